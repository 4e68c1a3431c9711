import { credentials, loadPackageDefinition, Metadata, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PRINCIPAL_HEADER, signPrincipal } from "../../mesh/principal-token.js";
import { checkHealth, listServicesByReflection } from "../../test/support/grpc-probes.js";
import { type Harness, startHarness } from "./test-support.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.stop());

type Unary = (
  req: unknown,
  md: Metadata,
  cb: (err: Error | null, res: Record<string, unknown>) => void,
) => void;

/** A client that knows nothing of our code: built from the .proto files, as a third party would. */
function independentClient(address: string) {
  // Named relative to the include dirs (proto/codex/project/v1/project_service.proto), so
  // proto-loader resolves it and its imports the way protoc would.
  const def = loadSync("codex/project/v1/project_service.proto", {
    includeDirs: ["proto", "node_modules/google-proto-files"],
    keepCase: false,
    enums: String,
    longs: String,
    defaults: true,
  });
  const pkg = loadPackageDefinition(def) as unknown as {
    codex: { project: { v1: { ProjectService: ServiceClientConstructor } } };
  };
  return new pkg.codex.project.v1.ProjectService(address, credentials.createInsecure()) as unknown as Record<
    string,
    Unary
  > & { close(): void };
}

function call(client: Record<string, Unary>, method: string, req: unknown, md: Metadata) {
  return new Promise<Record<string, unknown>>((resolve, reject) =>
    client[method]!(req, md, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

describe("over the wire", () => {
  it("serves a client generated independently from the .proto files", async () => {
    const client = independentClient(h.running.address);
    const md = new Metadata();
    md.set(PRINCIPAL_HEADER, signPrincipal({ type: "user", id: "wire-user" }, h.secret));
    try {
      const created = await call(
        client,
        "CreateProject",
        { project: { name: "wired", labels: { via: "proto-loader" } } },
        md,
      );
      const project = created.project as Record<string, unknown>;
      expect(project).toMatchObject({ name: "wired", state: "PROJECT_STATE_ACTIVE", createdBy: "wire-user" });
      const got = await call(client, "GetProject", { projectId: project.id }, md);
      expect(got.project).toMatchObject({ id: project.id, labels: { via: "proto-loader" } });
      await expect(
        call(client, "GetProject", { projectId: project.id }, new Metadata()),
      ).rejects.toMatchObject({
        code: 16,
      });
    } finally {
      client.close();
    }
  });

  it("reports SERVING on gRPC health and lists the service through reflection", async () => {
    expect(await checkHealth(h.running.address)).toBe("SERVING");
    expect(await checkHealth(h.running.address, "codex.project.v1.ProjectService")).toBe("SERVING");
    expect(await listServicesByReflection(h.running.address)).toContain("codex.project.v1.ProjectService");
  });
});
