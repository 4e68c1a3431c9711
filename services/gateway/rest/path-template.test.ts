import { describe, expect, it } from "vitest";
import { matchTemplate, parseTemplate, specificity } from "./path-template.js";

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
