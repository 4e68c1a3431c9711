import { describe, expect, it } from "vitest";
import { RestRouter } from "../rest/router.js";
import { buildRouteTable, GRPC_ONLY_PUBLIC } from "./route-table.js";

const table = buildRouteTable();
const route = (path: string) => table.public.get(path);

describe("route table", () => {
  it("makes annotated methods public and the others internal", () => {
    expect(route("/codex.project.v1.ProjectService/GetProject")?.upstream).toBe("project");
    expect(table.internal.has("/codex.project.v1.ProjectService/GetMemberRole")).toBe(true);
    expect(table.internal.has("/codex.agentmanager.v1.AgentManagerService/EnqueueRun")).toBe(true);
    expect(table.public.has("/codex.agentmanager.v1.AgentManagerService/EnqueueRun")).toBe(false);
    expect(route("/codex.gateway.v1.IdentityService/WhoAmI")?.upstream).toBe("gateway");
  });

  it("keeps the agents' client and bidi streams public over gRPC only", () => {
    for (const path of GRPC_ONLY_PUBLIC) {
      expect(route(path)?.bindings).toEqual([]);
      expect(table.internal.has(path)).toBe(false);
    }
  });

  it("flattens additional bindings", () => {
    const templates = route("/codex.agentmanager.v1.AgentManagerService/ListRuns")?.bindings.map(
      (b) => b.template,
    );
    expect(templates).toEqual([
      "/v1/runs",
      "/v1/projects/{project_id}/runs",
      "/v1/work-items/{work_item_id}/runs",
    ]);
    expect(route("/codex.project.v1.ProjectService/UpdateProject")?.bindings[0]).toMatchObject({
      verb: "PATCH",
      template: "/v1/projects/{project.id}",
      body: "project",
    });
  });

  it("classes routes for rate limits", () => {
    const cls = (p: string) => route(p)?.routeClass;
    expect(cls("/codex.agentmanager.v1.AgentManagerService/Connect")).toBe("agent");
    expect(cls("/codex.agentmanager.v1.AgentManagerService/ClaimRun")).toBe("agent");
    expect(cls("/codex.agentmanager.v1.AgentManagerService/RegisterAgent")).toBe("agent");
    expect(cls("/codex.agentmanager.v1.AgentManagerService/WatchRunLogs")).toBe("stream");
    expect(cls("/codex.workitem.v1.WorkItemService/UploadArtifact")).toBe("stream");
    expect(cls("/codex.project.v1.ProjectService/ListProjects")).toBe("read");
    expect(cls("/codex.audit.v1.AuditService/VerifyChain")).toBe("read");
    expect(cls("/codex.project.v1.ProjectService/CreateProject")).toBe("write");
  });

  it("parses every REST template of the product and routes each to one method", () => {
    const router = new RestRouter(table);
    const endpoints = router.list();
    expect(endpoints.length).toBeGreaterThan(50);
    const seen = new Set<string>();
    for (const e of endpoints) {
      const key = `${e.verb} ${e.template}`;
      expect(seen.has(key), `duplicate binding ${key}`).toBe(false);
      seen.add(key);
    }
    const found = (m: string, p: string) => {
      const r = router.match(m, p);
      return r.kind === "found" ? r.route.method.name : r.kind;
    };
    expect(found("POST", "/v1/agents:register")).toBe("RegisterAgent");
    expect(found("GET", "/v1/agents/a1")).toBe("GetAgent");
    expect(found("GET", "/v1/runs/r1/logs:watch")).toBe("WatchRunLogs");
    expect(found("GET", "/v1/runs/r1/logs")).toBe("ListRunLogs");
    expect(found("GET", "/v1/projects/p/vision/versions/3")).toBe("GetVision");
    expect(found("GET", "/v1/projects/p/vision/versions")).toBe("ListVisionVersions");
    expect(found("DELETE", "/v1/projects/p")).toBe("method-not-allowed");
    expect(found("GET", "/v2/projects")).toBe("not-found");
  });
});
