/**
 * A codex-agent as its own OS process. With a token it connects as agents do in production,
 * through the gateway's gRPC front door with an agent JWT; without one, straight to the agent
 * manager with a mesh-signed principal.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { type ProcessStack, ROOT, stopProcess } from "./process-stack.js";

export class AgentProcess {
  readonly child: ChildProcess;
  agentId = "";
  output: string[] = [];

  constructor(stack: ProcessStack, name: string, workDir: string, extraArgs: string[] = [], token?: string) {
    const connection = token
      ? ["--address", stack.gatewayGrpc, "--token", token]
      : [
          ...["--address", stack.address("agent-manager"), "--artifact-address", stack.address("workitem")],
          ...["--mesh-secret", stack.meshSecret],
        ];
    this.child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        `${ROOT}agent/main.ts`,
        ...connection,
        ...["--name", name, "--capacity", "2"],
        ...["--work-dir", workDir, "--kill-grace", "500ms", "--grace", "5s", "--force", "10s"],
        ...extraArgs,
      ],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const keep = (b: Buffer) => {
      for (const line of b.toString().split("\n").filter(Boolean)) {
        this.output.push(line);
        const m = /"agentId":"([0-9a-f-]{36})".*codex-agent ready/.exec(line);
        if (m) this.agentId = m[1] ?? "";
      }
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
  }

  /** Resolves once the agent is registered and connected. */
  async ready(timeoutMs = 30_000): Promise<this> {
    const until = Date.now() + timeoutMs;
    while (this.agentId === "") {
      if (this.child.exitCode !== null) throw new Error(`agent exited: ${this.output.slice(-20).join("\n")}`);
      if (Date.now() > until) throw new Error(`agent not ready: ${this.output.slice(-20).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return this;
  }

  stop(): Promise<void> {
    return stopProcess(this.child, 15_000);
  }
}
