import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Client, credentials } from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { checkHealth, listServicesByReflection, reflectSymbol } from "../../test/support/grpc-probes.js";
import { currentContext } from "../context.js";
import { Code, invalidArgument, ServiceError } from "../errors.js";
import { PRINCIPAL_HEADER } from "../principal-token.js";
import { createClient } from "./client.js";
import { GrpcServer } from "./server.js";
import type { ServiceClient } from "./types.js";

// A throw-away Echo service built from a descriptor in code, so the mesh tests need no contract
// of any real service: one method of each of the four kinds.
const file = create(FileDescriptorProtoSchema, {
  name: "meshtest/echo.proto",
  package: "meshtest",
  syntax: "proto3",
  messageType: [
    {
      name: "EchoRequest",
      field: [
        { name: "text", number: 1, type: FieldDescriptorProto_Type.STRING, jsonName: "text" },
        { name: "count", number: 2, type: FieldDescriptorProto_Type.INT32, jsonName: "count" },
      ],
    },
    {
      name: "EchoResponse",
      field: [{ name: "text", number: 1, type: FieldDescriptorProto_Type.STRING, jsonName: "text" }],
    },
  ],
  service: [
    {
      name: "EchoService",
      method: [
        { name: "Say", inputType: ".meshtest.EchoRequest", outputType: ".meshtest.EchoResponse" },
        {
          name: "Repeat",
          inputType: ".meshtest.EchoRequest",
          outputType: ".meshtest.EchoResponse",
          serverStreaming: true,
        },
        {
          name: "Join",
          inputType: ".meshtest.EchoRequest",
          outputType: ".meshtest.EchoResponse",
          clientStreaming: true,
        },
        {
          name: "Chat",
          inputType: ".meshtest.EchoRequest",
          outputType: ".meshtest.EchoResponse",
          clientStreaming: true,
          serverStreaming: true,
        },
      ],
    },
  ],
});
const registry = createFileRegistry(file, () => undefined);
const Echo = registry.getService("meshtest.EchoService") as DescService;
type Req = { text: string; count: number };

const SECRET = "mesh-test-secret";
let server: GrpcServer;
let client: ServiceClient<DescService>;
let port: number;
const observed: string[] = [];

beforeAll(async () => {
  server = new GrpcServer({
    logger: pino({ level: "silent" }),
    principalSecret: SECRET,
    observe: (m, code) => observed.push(`${m} ${code}`),
    maxReceiveMessageBytes: 64 * 1024,
  });
  server.add(Echo, {
    say: async (req: Req) => {
      if (req.text === "")
        throw invalidArgument("text is required", [{ field: "text", description: "must not be empty" }]);
      if (req.text === "boom") throw new Error("db password=hunter2 leaked");
      const ctx = currentContext();
      return { text: `${req.text}|${ctx?.principal?.id ?? "anonymous"}|${ctx?.correlationId}` };
    },
    repeat: async function* (req: Req) {
      for (let i = 0; i < req.count; i++) yield { text: `${req.text}${i}` };
    },
    join: async (reqs: AsyncIterable<Req>) => {
      const parts: string[] = [];
      for await (const r of reqs) parts.push(r.text);
      return { text: parts.join("+") };
    },
    chat: async function* (reqs: AsyncIterable<Req>) {
      for await (const r of reqs) yield { text: r.text.toUpperCase() };
    },
  } as never);
  port = await server.start(0, "127.0.0.1");
  server.setServing("SERVING");
  client = createClient(Echo, {
    address: `127.0.0.1:${port}`,
    principalSecret: SECRET,
    defaultPrincipal: { type: "user", id: "alice" },
  });
});

afterAll(async () => {
  client.close();
  await server.stop(1_000);
});

const call = (name: string) => (client as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!;

describe("gRPC adapter", () => {
  it("serves a unary call with the forwarded principal and request context", async () => {
    const res = (await call("say")({ text: "hi" }, { headers: { "x-correlation-id": "corr-1" } })) as {
      text: string;
    };
    expect(res.text).toBe("hi|alice|corr-1");
    expect(observed).toContain("/meshtest.EchoService/Say OK");
  });

  it("maps domain errors to INVALID_ARGUMENT with field violations", async () => {
    const err = (await (call("say")({ text: "" }) as Promise<unknown>).catch((e) => e)) as ServiceError;
    expect(err).toBeInstanceOf(ServiceError);
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.findDetail(BadRequestSchema)?.fieldViolations[0]?.field).toBe("text");
  });

  it("hides unexpected errors behind INTERNAL without leaking their text", async () => {
    const err = (await (call("say")({ text: "boom" }) as Promise<unknown>).catch((e) => e)) as ServiceError;
    expect(err.code).toBe(Code.INTERNAL);
    expect(err.message).not.toContain("hunter2");
  });

  it("streams server, client and bidi messages as async iterables", async () => {
    const got: string[] = [];
    for await (const m of call("repeat")({ text: "x", count: 3 }) as AsyncIterable<{ text: string }>)
      got.push(m.text);
    expect(got).toEqual(["x0", "x1", "x2"]);

    async function* parts() {
      yield { text: "a" };
      yield { text: "b" };
    }
    expect(((await call("join")(parts())) as { text: string }).text).toBe("a+b");

    const echoed: string[] = [];
    for await (const m of call("chat")(parts()) as AsyncIterable<{ text: string }>) echoed.push(m.text);
    expect(echoed).toEqual(["A", "B"]);
  });

  it("refuses a forged principal with UNAUTHENTICATED", async () => {
    const err = (await (
      call("say")({ text: "hi" }, { headers: { [PRINCIPAL_HEADER]: "eyJ9.forged" } }) as Promise<unknown>
    ).catch((e) => e)) as ServiceError;
    expect(err.code).toBe(Code.UNAUTHENTICATED);
  });

  it("answers malformed protobuf with INVALID_ARGUMENT and oversized messages with RESOURCE_EXHAUSTED", async () => {
    const raw = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    const send = (payload: Buffer) =>
      new Promise<{ code: number }>((resolve) =>
        raw.makeUnaryRequest(
          "/meshtest.EchoService/Say",
          (b: Buffer) => b,
          (b: Buffer) => b,
          payload,
          (err) => resolve({ code: err?.code ?? 0 }),
        ),
      );
    expect((await send(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))).code).toBe(Code.INVALID_ARGUMENT);
    expect((await send(Buffer.alloc(128 * 1024, 0x41))).code).toBe(Code.RESOURCE_EXHAUSTED);
    raw.close();
  });

  it("reports health NOT_SERVING until ready, and answers reflection", async () => {
    const fresh = new GrpcServer({ logger: pino({ level: "silent" }) });
    fresh.add(Echo, {
      say: async () => ({}),
      repeat: async function* () {},
      join: async () => ({}),
      chat: async function* () {},
    } as never);
    const freshPort = await fresh.start(0, "127.0.0.1");
    const address = `127.0.0.1:${freshPort}`;
    expect(await checkHealth(address)).toBe("NOT_SERVING");
    fresh.setServing("SERVING");
    expect(await checkHealth(address)).toBe("SERVING");
    expect(await checkHealth(address, "meshtest.EchoService")).toBe("SERVING");
    expect(await listServicesByReflection(address)).toContain("meshtest.EchoService");
    expect(await reflectSymbol(address, "meshtest.EchoService")).toBeGreaterThan(0);
    await fresh.stop(500);
  });
});
