import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ApiKeyRevokedSchema } from "../../../gen/codex/events/v1/gateway_events_pb.js";
import {
  MemberAddedSchema,
  MemberRemovedSchema,
  MemberRoleChangedSchema,
  ProjectArchivedSchema,
  ProjectUpdatedSchema,
} from "../../../gen/codex/events/v1/project_events_pb.js";
import { encodeEnvelope, newEnvelope } from "../../../mesh/events/envelope.js";
import { applyCacheEvent } from "./cache-events.js";

function bytes<S extends Parameters<typeof newEnvelope>[0]["schema"]>(
  schema: S,
  payload: Parameters<typeof newEnvelope<S>>[0]["payload"],
) {
  return encodeEnvelope(
    newEnvelope({ schema, payload, aggregateType: "project", aggregateId: "p1", actor: {}, source: "test" }),
  );
}

describe("applyCacheEvent", () => {
  it("drops the principal named by membership events, everything on archive, the key on revocation", () => {
    const dropped: (string | undefined)[] = [];
    const keys: string[] = [];
    const targets = {
      forgetPrincipal: (id?: string) => dropped.push(id),
      forgetKey: (l: string) => keys.push(l),
    };
    applyCacheEvent(bytes(MemberAddedSchema, create(MemberAddedSchema, { principalId: "a" })), targets);
    applyCacheEvent(bytes(MemberRemovedSchema, create(MemberRemovedSchema, { principalId: "b" })), targets);
    applyCacheEvent(
      bytes(MemberRoleChangedSchema, create(MemberRoleChangedSchema, { principalId: "c" })),
      targets,
    );
    applyCacheEvent(
      bytes(ProjectArchivedSchema, create(ProjectArchivedSchema, { projectId: "p1" })),
      targets,
    );
    expect(dropped).toEqual(["a", "b", "c", undefined]);
    applyCacheEvent(
      bytes(ApiKeyRevokedSchema, create(ApiKeyRevokedSchema, { keyPrefix: "cdx_0123456789ab" })),
      targets,
    );
    expect(keys).toEqual(["0123456789ab"]);
    expect(
      applyCacheEvent(bytes(ProjectUpdatedSchema, create(ProjectUpdatedSchema, {})), targets),
    ).toBeUndefined();
    expect(dropped).toHaveLength(4);
  });
});
