import { describe, expect, it } from "vitest";
import { matchSplit, matchTemplate, parseTemplate, specificity, splitPath } from "./path-template.js";

const match = (template: string, path: string) => matchTemplate(parseTemplate(template), path);

describe("path templates", () => {
  it("binds single-segment variables, percent-decoded", () => {
    expect(match("/v1/projects/{project_id}", "/v1/projects/p-1")).toEqual({ project_id: "p-1" });
    expect(match("/v1/projects/{project_id}", "/v1/projects/a%20b")).toEqual({ project_id: "a b" });
    expect(match("/v1/projects/{project_id}", "/v1/projects/")).toBeUndefined();
    expect(match("/v1/projects/{project_id}", "/v1/projects/p/members")).toBeUndefined();
  });

  it("binds nested field paths", () => {
    expect(match("/v1/projects/{project.id}", "/v1/projects/42")).toEqual({ "project.id": "42" });
  });

  it("binds multi-segment patterns and the rest of the path", () => {
    expect(match("/v1/{name=projects/*}", "/v1/projects/p1")).toEqual({ name: "projects/p1" });
    expect(match("/v1/{name=projects/*}", "/v1/agents/p1")).toBeUndefined();
    expect(match("/v1/{name=projects/*/runs/*}:cancel", "/v1/projects/p/runs/r:cancel")).toEqual({
      name: "projects/p/runs/r",
    });
    expect(match("/files/{path=**}", "/files/a/b/c.txt")).toEqual({ path: "a/b/c.txt" });
  });

  it("requires the custom verb and strips it from the last variable", () => {
    const t = "/v1/projects/{project_id}/requirements/{requirements_id}:approve";
    expect(match(t, "/v1/projects/p/requirements/r1:approve")).toEqual({
      project_id: "p",
      requirements_id: "r1",
    });
    expect(match(t, "/v1/projects/p/requirements/r1:reject")).toBeUndefined();
    expect(match(t, "/v1/projects/p/requirements/r1")).toBeUndefined();
    expect(match("/v1/auditRecords:verifyChain", "/v1/auditRecords:verifyChain")).toEqual({});
  });

  it("refuses malformed templates", () => {
    expect(() => parseTemplate("v1/x")).toThrow(/start with/);
    expect(() => parseTemplate("/v1/{bad-name}")).toThrow(/field path/);
    expect(() => parseTemplate("/v1/**/x")).toThrow(/last/);
    expect(() => parseTemplate("/v1/{x")).toThrow(/unclosed/);
  });

  it("ranks literal segments and verbs above variables", () => {
    const literal = specificity(parseTemplate("/v1/agents:register"));
    const variable = specificity(parseTemplate("/v1/{agent_id}"));
    const versions = specificity(parseTemplate("/v1/projects/{project_id}/vision/versions"));
    const vision = specificity(parseTemplate("/v1/projects/{project_id}/vision"));
    expect(literal).toBeGreaterThan(variable);
    expect(versions).toBeGreaterThan(vision);
  });
});

describe("matching a path split once against many templates", () => {
  const paths = [
    "/v1/projects/p-1",
    "/v1/projects/a%20b",
    "/v1/projects/",
    "/v1/projects/p/members",
    "/v1/projects/p/runs/r:cancel",
    "/v1/projects/p/requirements/r1:approve",
    "/v1/projects/p/requirements/r%3A1:approve",
    "/v1/projects/%E0%A4%A/x",
    "/v1/projects/x/%E0%A4%A",
    "/v1/projects/x/%E0%A4%A:approve",
    "/files",
    "/files/",
    "/files/a/b/c.txt",
    "/v1/auditRecords:verifyChain",
    "v1/projects/p",
    "/",
  ];
  const templates = [
    "/v1/projects/{project_id}",
    "/v1/projects/{project.id}/members",
    "/v1/{name=projects/*/runs/*}:cancel",
    "/v1/projects/{project_id}/requirements/{requirements_id}:approve",
    "/v1/projects/{project_id}/{x}",
    "/v1/projects/{project_id}/{x}:approve",
    "/files/{path=**}",
    "/files/**",
    "/v1/auditRecords:verifyChain",
  ].map(parseTemplate);

  /** The matcher as it was before paths were split once: the reference. */
  function reference(t: ReturnType<typeof parseTemplate>, path: string): Record<string, string> | undefined {
    if (!path.startsWith("/")) return undefined;
    let rest = path.slice(1);
    if (t.verb !== undefined) {
      const suffix = `:${t.verb}`;
      if (!rest.endsWith(suffix)) return undefined;
      rest = rest.slice(0, -suffix.length);
    }
    let parts: string[];
    try {
      parts = rest.split("/").map(decodeURIComponent);
    } catch {
      return undefined;
    }
    const deep = t.segments.at(-1)?.kind === "rest";
    if (deep ? parts.length < t.segments.length - 1 : parts.length !== t.segments.length) return undefined;
    for (let i = 0; i < t.segments.length; i++) {
      const seg = t.segments[i]!;
      if (seg.kind === "rest") break;
      const part = parts[i]!;
      if (seg.kind === "literal" ? part !== seg.value : part === "") return undefined;
    }
    const bound: Record<string, string> = {};
    for (const v of t.variables) bound[v.fieldPath] = parts.slice(v.start, v.end).join("/");
    return bound;
  }

  it("gives the same answer as matching each template on its own", () => {
    for (const path of paths) {
      const split = splitPath(path);
      for (const t of templates) {
        expect(matchSplit(t, split), `${t.source} on ${path}`).toEqual(reference(t, path));
      }
    }
  });
});
