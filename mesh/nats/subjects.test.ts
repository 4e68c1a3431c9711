import { describe, expect, it } from "vitest";
import { subjectMatches, subjectsFor } from "./subjects.js";

describe("subjectsFor", () => {
  const s = subjectsFor("codex");

  it("follows the envelope.proto scheme", () => {
    expect(s.event("project", "ProjectCreated")).toBe("codex.events.project.ProjectCreated");
    expect(s.command("scheduler", "ScheduleWorkItem")).toBe("codex.commands.scheduler.ScheduleWorkItem");
    expect(s.system("ServiceHealthChanged")).toBe("codex.system.ServiceHealthChanged");
    expect(s.dlq("audit-writer")).toBe("codex.dlq.audit-writer");
    expect(s.streams).toEqual({
      events: "CODEX_EVENTS",
      commands: "CODEX_COMMANDS",
      system: "CODEX_SYSTEM",
      dlq: "CODEX_DLQ",
    });
    expect(s.filters.events).toBe("codex.events.>");
  });

  it("refuses tokens with dots, spaces, wildcards or nothing at all", () => {
    for (const bad of ["a.b", "a b", "*", ">", "", "a>", "tab\t"]) {
      expect(() => s.event(bad, "X")).toThrow(/invalid aggregate type/);
      expect(() => s.dlq(bad)).toThrow(/invalid consumer/);
    }
    expect(() => subjectsFor("co.dex")).toThrow(/invalid prefix/);
  });
});

describe("subjectMatches", () => {
  it("implements NATS wildcard semantics", () => {
    expect(subjectMatches("a.*.c", "a.b.c")).toBe(true);
    expect(subjectMatches("a.*.c", "a.b.d")).toBe(false);
    expect(subjectMatches("a.>", "a.b.c")).toBe(true);
    expect(subjectMatches("a.>", "a")).toBe(false);
    expect(subjectMatches("a.b", "a.b.c")).toBe(false);
    expect(subjectMatches("a.b.c", "a.b")).toBe(false);
    expect(subjectMatches("a.b", "a.b")).toBe(true);
  });
});
