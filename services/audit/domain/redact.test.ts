import { create, createFileRegistry } from "@bufbuild/protobuf";
import { AnySchema, anyPack, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { InfoAnswerSchema } from "../../../gen/codex/agentmanager/v1/info_request_pb.js";
import {
  InfoAnsweredSchema,
  RunAssignedSchema,
  RunCompletedSchema,
  RunEnqueuedSchema,
  RunStartedSchema,
} from "../../../gen/codex/events/v1/agent_events_pb.js";
import { ServiceHealthChangedSchema } from "../../../gen/codex/events/v1/system_events_pb.js";
import { ToolRecipeSetSchema } from "../../../gen/codex/events/v1/workitem_events_pb.js";
import { eventRegistry } from "./event-registry.js";
import { payloadJson } from "./payload-json.js";
import { mayNeedRedaction, REDACTED, redactByName, redactMessageJson } from "./redact.js";

describe("payload redaction", () => {
  it("redacts secret-named map keys deep inside an event (recipe env GITHUB_TOKEN)", () => {
    const payload = create(ToolRecipeSetSchema, {
      workItemId: "w1",
      recipe: {
        tools: [{ name: "gh", version: "2.0.0", env: { GITHUB_TOKEN: "ghp_secret", GH_HOST: "github.com" } }],
        steps: [{ run: "make", env: { DB_PASSWORD: "hunter2" } }],
      },
    });
    const json = payloadJson(anyPack(ToolRecipeSetSchema, payload), eventRegistry);
    expect(json).not.toContain("ghp_secret");
    expect(json).not.toContain("hunter2");
    const parsed = JSON.parse(json);
    expect(parsed.recipe.tools[0].env).toEqual({ GITHUB_TOKEN: REDACTED, GH_HOST: "github.com" });
    expect(parsed.recipe.steps[0].env.DB_PASSWORD).toBe(REDACTED);
    // proto field names, defaults emitted
    expect(parsed.work_item_id).toBe("w1");
    expect(parsed.previous_version).toBe(0);
    expect(parsed.recipe.tools[0].network).toBe(false);
  });

  it("redacts system event details whose keys name secrets", () => {
    const payload = create(ServiceHealthChangedSchema, { details: { db_password: "pw", region: "eu" } });
    const parsed = JSON.parse(payloadJson(anyPack(ServiceHealthChangedSchema, payload), eventRegistry));
    expect(parsed.details).toEqual({ db_password: REDACTED, region: "eu" });
  });

  it("redacts fields marked debug_redact even when their name looks harmless", () => {
    const file = create(FileDescriptorProtoSchema, {
      name: "t/secretive.proto",
      package: "t",
      syntax: "proto3",
      messageType: [
        {
          name: "Secretive",
          field: [
            {
              name: "pin_code",
              number: 1,
              type: 9,
              label: 1,
              jsonName: "pinCode",
              options: { debugRedact: true },
            },
            { name: "label", number: 2, type: 9, label: 1, jsonName: "label" },
          ],
        },
      ],
    });
    const desc = createFileRegistry(file, () => undefined).getMessage("t.Secretive")!;
    expect(redactMessageJson(desc, { pin_code: "1234", label: "x" })).toEqual({
      pin_code: REDACTED,
      label: "x",
    });
  });

  it("redacts inside Any by the packed message's schema", () => {
    const any = {
      "@type": "type.googleapis.com/codex.events.v1.ToolRecipeSet",
      recipe: { tools: [{ name: "t", env: { X_TOKEN: "v", PLAIN: "p" } }] },
    };
    expect(redactMessageJson(AnySchema, any, eventRegistry)).toEqual({
      "@type": any["@type"],
      recipe: { tools: [{ name: "t", env: { X_TOKEN: REDACTED, PLAIN: "p" } }] },
    });
  });

  it("redacts schema-less JSON (Struct, Value) by name, at any depth", () => {
    let deep: Record<string, unknown> = { api_key: "k" };
    for (let i = 0; i < 12; i++) deep = { nested: deep };
    const out = JSON.stringify(redactByName(deep as never));
    expect(out).not.toContain('"k"');
    expect(out).toContain(REDACTED);
  });

  it("records an unknown or malformed payload as a placeholder without its bytes", () => {
    const unknown = payloadJson(
      {
        $typeName: "google.protobuf.Any",
        typeUrl: "type.googleapis.com/x.Future",
        value: Buffer.from("s3cr3t"),
      },
      eventRegistry,
    );
    expect(JSON.parse(unknown)).toMatchObject({ "@type": "x.Future", "@bytes": 6 });
    expect(unknown).not.toContain("s3cr3t");
    expect(unknown).not.toContain(Buffer.from("s3cr3t").toString("base64"));
    const malformed = payloadJson(
      { ...anyPack(ToolRecipeSetSchema, create(ToolRecipeSetSchema)), value: new Uint8Array([0x0a, 0xff]) },
      eventRegistry,
    );
    expect(JSON.parse(malformed)["@undecoded"]).toMatch(/could not be decoded/);
  });

  it("walks only payloads that can hold something to redact", () => {
    // Scalars, timestamps and durations only, fencing_token is not a secret: rendered as is.
    for (const plain of [RunAssignedSchema, RunStartedSchema, RunCompletedSchema, InfoAnsweredSchema]) {
      expect(mayNeedRedaction(plain)).toBe(false);
    }
    expect(mayNeedRedaction(RunEnqueuedSchema)).toBe(true); // run.agent_selector: a map
    expect(mayNeedRedaction(ToolRecipeSetSchema)).toBe(true); // env maps, deep inside
    expect(mayNeedRedaction(ServiceHealthChangedSchema)).toBe(true); // a Struct
    expect(mayNeedRedaction(InfoAnswerSchema)).toBe(true); // debug_redact values
    expect(mayNeedRedaction(AnySchema)).toBe(true);

    const selector = { agentSelector: { os: "linux", ci_token: "tok-123" } };
    const enqueued = create(RunEnqueuedSchema, { run: { id: "r1", ...selector } });
    const parsed = JSON.parse(payloadJson(anyPack(RunEnqueuedSchema, enqueued), eventRegistry));
    expect(parsed.run.agent_selector).toEqual({ os: "linux", ci_token: REDACTED });
    const assigned = create(RunAssignedSchema, { runId: "r1", fencingToken: 7n });
    const json = JSON.parse(payloadJson(anyPack(RunAssignedSchema, assigned), eventRegistry));
    expect(json).toMatchObject({ run_id: "r1", fencing_token: "7", attempt: 0 });
  });
});
