import { describe, expect, it } from "vitest";
import { loadAgentConfig } from "./config.js";

describe("loadAgentConfig", () => {
  it("lets flags override the environment and keeps secrets out of the steps' environment", () => {
    const cfg = loadAgentConfig(
      ["--capacity", "3", "--label", "os=linux", "--label", "tier=2", "--api-key", "cdx_x"],
      {
        CODEX_AGENT_CAPACITY: "1",
        CODEX_AGENT_NAME: "builder-1",
        CODEX_AGENT_MESH_SECRET: "mesh",
        PATH: "/usr/bin",
        AWS_SECRET_ACCESS_KEY: "nope",
      },
    );
    if (cfg === "help") throw new Error("unexpected help");
    expect(cfg.CODEX_AGENT_CAPACITY).toBe(3);
    expect(cfg.CODEX_AGENT_NAME).toBe("builder-1");
    expect(cfg.CODEX_AGENT_LABELS).toEqual(["os=linux", "tier=2"]);
    expect(cfg.CODEX_AGENT_API_KEY).toBe("cdx_x");
    expect(cfg.stepBaseEnv).toEqual({ PATH: "/usr/bin" });
    expect(cfg.titleSteps.build).toEqual(["npm run build"]);
  });

  it("names the bad variable, and parses --title-steps", () => {
    expect(() => loadAgentConfig(["--step-timeout", "soon"], {})).toThrow(/CODEX_AGENT_STEP_TIMEOUT/);
    expect(() => loadAgentConfig(["--bogus"], {})).toThrow(/bogus/);
    const cfg = loadAgentConfig(["--title-steps", '{"build":"make"}'], {});
    expect(cfg !== "help" && cfg.titleSteps).toEqual({ build: ["make"] });
    expect(loadAgentConfig(["--help"], {})).toBe("help");
  });
});
