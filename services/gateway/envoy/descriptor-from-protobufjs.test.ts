import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { DescMessage } from "@bufbuild/protobuf";
import { createFileRegistry, fromJson, toJson } from "@bufbuild/protobuf";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toFileDescriptorSet } from "./descriptor-from-protobufjs.js";

/** Two files exercising what Envoy's protos use: maps, oneofs, proto3 optional, nesting, WKTs. */
const FILES: Record<string, string> = {
  "demo/v1/common.proto": `
    syntax = "proto3";
    package demo.v1;
    message Percent { double value = 1; }
    enum Level { LEVEL_UNSPECIFIED = 0; LEVEL_HIGH = 1; }`,
  "demo/v1/thing.proto": `
    syntax = "proto3";
    package demo.v1;
    import "demo/v1/common.proto";
    import "google/protobuf/duration.proto";
    import "google/protobuf/any.proto";
    message Thing {
      message Inner { Level level = 1; }
      string stat_prefix = 1;
      map<string, Percent> per_host = 2;
      oneof target { string cluster = 3; Inner inner = 4; }
      optional uint32 retries = 5;
      google.protobuf.Duration timeout = 6;
      repeated google.protobuf.Any extensions = 7;
      string renamed = 8 [json_name = "otherName"];
    }`,
};

describe("toFileDescriptorSet", () => {
  let dir: string;
  let thing: DescMessage;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "codex-pbjs-"));
    for (const [name, text] of Object.entries(FILES)) {
      mkdirSync(join(dir, name, ".."), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(dir, target);
    root.loadSync(Object.keys(FILES), { keepCase: true });
    const set = toFileDescriptorSet(root, (path) => relative(dir, path));
    const registry = createFileRegistry(set);
    thing = registry.getMessage("demo.v1.Thing")!;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps one file per source file, with the dependency protobuf-es needs to register it", () => {
    expect(thing.file.name).toBe("demo/v1/thing");
    expect(thing.file.dependencies.map((f) => f.name).sort()).toEqual([
      "demo/v1/common",
      "google/protobuf/any",
      "google/protobuf/duration",
    ]);
  });

  it("reproduces maps, oneofs, proto3 optional, JSON names and nested types as protoc would", () => {
    const field = (name: string) => thing.fields.find((f) => f.name === name)!;
    expect(field("per_host").fieldKind).toBe("map");
    expect(field("cluster").oneof?.name).toBe("target");
    expect(field("inner").oneof?.name).toBe("target");
    expect(field("retries").proto.proto3Optional).toBe(true);
    expect(field("stat_prefix").jsonName).toBe("statPrefix");
    expect(field("renamed").jsonName).toBe("otherName");
    expect(thing.proto.oneofDecl.map((o) => o.name)).toEqual(["target", "_retries"]); // synthetic last
  });

  it("decodes JSON strictly with protobuf-es, under proto and JSON names", () => {
    const json = {
      stat_prefix: "in",
      perHost: { a: { value: 0.5 } },
      inner: { level: "LEVEL_HIGH" },
      retries: 0,
      timeout: "1.5s",
      otherName: "x",
    };
    const message = fromJson(thing, json);
    expect(toJson(thing, message)).toEqual({
      statPrefix: "in",
      perHost: { a: { value: 0.5 } },
      inner: { level: "LEVEL_HIGH" },
      retries: 0,
      timeout: "1.500s",
      otherName: "x",
    });
    expect(() => fromJson(thing, { cluster: "a", inner: {} })).toThrow(/oneof/);
    expect(() => fromJson(thing, { inner: { level: "LEVEL_LOW" } })).toThrow(/LEVEL_LOW/);
  });
});
