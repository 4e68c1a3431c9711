import { performance } from "node:perf_hooks";
import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { createClient } from "../../mesh/grpc/client.js";
import { createLogger } from "../../mesh/logging.js";
import { AgentWorker } from "../../sdk/index.js";
import { ProcessStack, ROOT } from "./process-stack.js";

const stack = await new ProcessStack({
  runner: { distDir: `${ROOT}dist/.bench` },
  services: ["agent-manager"],
  env: { "*": { LOG_LEVEL: "error" } },
}).start();
const enq = createClient(AgentManagerService, {
  address: stack.address("agent-manager"),
  principalSecret: stack.meshSecret,
  defaultPrincipal: { type: "service", id: "scheduler" },
  retry: false,
  breaker: false,
});
const t = new Map<string, number>();
const ret = new Map<string, number>();
const lat: number[] = [];
const ack: number[] = [];
const w = new AgentWorker({
  connection: { address: stack.address("agent-manager"), meshSecret: stack.meshSecret },
  agent: { name: "p", capacity: 64 },
  logger: createLogger({ service: "p", level: "error" }),
  onRunSettled: (id) => {
    const r = ret.get(id);
    if (r) ack.push(performance.now() - r);
  },
  handler: async (run) => {
    lat.push(performance.now() - (t.get(run.run.taskId) ?? 0));
    ret.set(run.runId, performance.now());
  },
});
await w.start();
for (let i = 0; i < 50; i++) {
  const id = `t${i}`;
  t.set(id, performance.now());
  const s = performance.now();
  await enq.enqueueRun({
    taskId: id,
    workItemId: `w${i}`,
    projectId: "b",
    attempt: 1,
    workItem: { workItemId: `w${i}`, projectId: "b", title: "x" },
  });
  if (i < 3) console.log("enqueue call ms", performance.now() - s);
  await new Promise((r) => setTimeout(r, 100));
}
await new Promise((r) => setTimeout(r, 2000));
const q = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return [s[0], s[Math.floor(s.length / 2)], s[s.length - 1]].map((x) => x?.toFixed(1));
};
console.log("enqueue→assign min/med/max", q(lat), "n", lat.length);
console.log("handler return→ack min/med/max", q(ack), "n", ack.length);
await w.stop();
enq.close();
await stack.stop();
process.exit(0);
