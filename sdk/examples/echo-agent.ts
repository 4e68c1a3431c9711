/**
 * The smallest useful agent: echoes each work item back into its run log, asks a person for a
 * value when the item is labelled `needs-input=true`, uploads the echo as an artifact, and
 * succeeds. Stops gracefully on SIGTERM/SIGINT.
 *
 *   npx tsx sdk/examples/echo-agent.ts --address 127.0.0.1:50050 --api-key cdx_... [--name echo-1]
 */
import { parseArgs } from "node:util";
import { AgentWorker, handleSignals, RunFailure } from "../index.js";

const { values: args } = parseArgs({
  options: {
    address: { type: "string", default: "127.0.0.1:50050" },
    "api-key": { type: "string" },
    name: { type: "string", default: "echo-agent" },
  },
});

const worker = new AgentWorker({
  connection: {
    address: args.address,
    ...(args["api-key"] ? { credentials: { apiKey: args["api-key"] } } : {}),
  },
  agent: { name: args.name, capacity: 4, labels: { kind: "echo" } },
  shutdown: { graceMs: 10_000, forceMs: 15_000 },
});

worker.onAssignment(async (run, ctx) => {
  const item = run.workItem;
  ctx.log("stdout", `run ${run.runId} (attempt ${run.attempt}): ${item.title}`);
  ctx.log("stdout", item.description || "(no description)");

  let greeting = "hello";
  if (item.labels["needs-input"] === "true") {
    // Answers are secrets: use them, never log them.
    const answers = await ctx.requestInfo([{ name: "GREETING", description: "What should I say?" }], {
      reason: "the echo agent needs a greeting",
    });
    greeting = answers.GREETING ?? greeting;
  }

  ctx.setStep(1);
  if (ctx.signal.aborted) throw new RunFailure("cancelled before upload");
  const artifact = await ctx.uploadArtifact("echo.txt", "text/plain", `${greeting}, ${item.title}\n`);
  ctx.log("system", `uploaded ${artifact.name} (${artifact.sizeBytes} bytes, sha256 ${artifact.sha256})`);
  return { exitCode: 0 };
});

handleSignals(worker, { forceMs: 15_000 });
await worker.start();
console.log(`echo agent ${worker.agentId} connected; Ctrl-C to stop`);
process.exitCode = (await worker.done) === "STOPPED" ? 0 : 1;
