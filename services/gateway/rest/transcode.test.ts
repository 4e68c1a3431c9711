import { create, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WatchRunLogsRequestSchema } from "../../../gen/codex/agentmanager/v1/logs_pb.js";
import { ExportAuditRecordsRequestSchema } from "../../../gen/codex/audit/v1/audit_service_pb.js";
import {
  ListProjectsRequestSchema,
  UpdateProjectRequestSchema,
} from "../../../gen/codex/project/v1/project_pb.js";
import { SubmitVisionResponseSchema } from "../../../gen/codex/project/v1/vision_pb.js";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { Code, invalidArgument, ServiceError } from "../../../mesh/errors.js";
import { buildRouteTable, type HttpBinding } from "../routes/route-table.js";
import { errorJson, errorResponse, HttpError, httpStatusOf } from "./http-errors.js";
import { jsonRegistry, requestFromHttp, responseToJson } from "./transcode.js";

const registry = jsonRegistry(buildRouteTable().services);
const binding = (body: string, template = "/x"): HttpBinding => ({
  verb: "GET",
  template,
  body,
  responseBody: "",
});
const build = <D extends DescMessage>(
  desc: D,
  b: HttpBinding,
  params: Record<string, string>,
  query: string,
  body?: JsonValue,
) => requestFromHttp(desc, b, params, new URLSearchParams(query), body, registry);

function violation(fn: () => unknown): { code: Code; field: string } {
  try {
    fn();
  } catch (err) {
    const e = ServiceError.from(err);
    return { code: e.code, field: e.findDetail(BadRequestSchema)?.fieldViolations[0]?.field ?? "" };
  }
  throw new Error("expected a failure");
}

describe("request building", () => {
  it("maps query parameters: dotted paths, repeated enums by name or number, int64, bools", () => {
    const q =
      "follow=true&start_offset=9007199254740993&filter.streams=LOG_STREAM_STDERR&filter.streams=1&filter.stepIndex=2";
    const msg = build(WatchRunLogsRequestSchema, binding(""), { run_id: "r1" }, q);
    expect(msg).toMatchObject({ runId: "r1", follow: true, startOffset: 9007199254740993n });
    expect(msg.filter).toMatchObject({ streams: [2, 1], stepIndex: 2 });
  });

  it("maps maps, enums and well-known types from the query", () => {
    const list = build(
      ListProjectsRequestSchema,
      binding(""),
      {},
      "labels[team]=core&state=PROJECT_STATE_ACTIVE&pageSize=5",
    );
    expect(list).toMatchObject({ labels: { team: "core" }, state: 1, pageSize: 5 });
    const exp = build(
      ExportAuditRecordsRequestSchema,
      binding(""),
      {},
      "start_time=2026-01-02T03:04:05Z&event_types=a&event_types=b",
    );
    expect(exp.startTime?.seconds).toBe(BigInt(Date.UTC(2026, 0, 2, 3, 4, 5) / 1000));
    expect(exp.eventTypes).toEqual(["a", "b"]);
  });

  it("refuses unknown, duplicate and path-bound query parameters", () => {
    expect(violation(() => build(ListProjectsRequestSchema, binding(""), {}, "pageSzie=5"))).toEqual({
      code: Code.INVALID_ARGUMENT,
      field: "pageSzie",
    });
    expect(
      violation(() => build(ListProjectsRequestSchema, binding(""), {}, "page_size=1&page_size=2")).field,
    ).toBe("page_size");
    expect(
      violation(() => build(WatchRunLogsRequestSchema, binding(""), { run_id: "r" }, "run_id=s")).field,
    ).toBe("run_id");
    expect(violation(() => build(ListProjectsRequestSchema, binding(""), {}, "page_size=abc")).code).toBe(
      Code.INVALID_ARGUMENT,
    );
  });

  it("maps a body field, with the path winning over the body", () => {
    const b = binding("project", "/v1/projects/{project.id}");
    const msg = build(
      UpdateProjectRequestSchema,
      b,
      { "project.id": "p-path" },
      "update_mask=display_name,labels",
      {
        id: "p-body",
        displayName: "New",
      },
    );
    expect(msg.project).toMatchObject({ id: "p-path", displayName: "New" });
    expect(msg.updateMask?.paths).toEqual(["display_name", "labels"]);
  });

  it("refuses unknown JSON fields with the field named, and query parameters beside body '*'", () => {
    const b = binding("*");
    expect(violation(() => build(UpdateProjectRequestSchema, b, {}, "", { project: { nmae: "x" } }))).toEqual(
      {
        code: Code.INVALID_ARGUMENT,
        field: "nmae",
      },
    );
    expect(violation(() => build(UpdateProjectRequestSchema, b, {}, "x=1", {})).field).toBe("x");
  });
});

describe("responses and errors", () => {
  it("writes camelCase JSON with 64-bit integers as strings and unpopulated fields present", () => {
    const msg = create(SubmitVisionResponseSchema, { vision: { version: 9007199254740993n, problem: "p" } });
    const json = responseToJson(SubmitVisionResponseSchema, msg, undefined, registry) as {
      vision: Record<string, unknown>;
    };
    expect(json.vision.version).toBe("9007199254740993");
    expect(json.vision.successCriteria).toBe("");
    const picked = responseToJson(
      SubmitVisionResponseSchema,
      msg,
      { ...binding(""), responseBody: "vision" },
      registry,
    );
    expect((picked as Record<string, unknown>).problem).toBe("p");
  });

  it("renders details with @type and maps codes to HTTP statuses as grpc-gateway does", () => {
    const err = invalidArgument("bad", [{ field: "project.name", description: "too short" }]);
    expect(errorJson(err, registry)).toEqual({
      code: 3,
      message: "bad",
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: [{ field: "project.name", description: "too short" }],
        },
      ],
    });
    const pairs: [Code, number][] = [
      [Code.INVALID_ARGUMENT, 400],
      [Code.UNAUTHENTICATED, 401],
      [Code.PERMISSION_DENIED, 403],
      [Code.NOT_FOUND, 404],
      [Code.ALREADY_EXISTS, 409],
      [Code.ABORTED, 409],
      [Code.FAILED_PRECONDITION, 400],
      [Code.RESOURCE_EXHAUSTED, 429],
      [Code.CANCELLED, 499],
      [Code.UNIMPLEMENTED, 501],
      [Code.UNAVAILABLE, 503],
      [Code.DEADLINE_EXCEEDED, 504],
      [Code.INTERNAL, 500],
      [Code.UNKNOWN, 500],
      [Code.DATA_LOSS, 500],
    ];
    for (const [code, status] of pairs) expect(httpStatusOf(code), Code[code]).toBe(status);
    expect(errorResponse(new HttpError(413, Code.RESOURCE_EXHAUSTED, "big"), registry).status).toBe(413);
    expect(errorResponse(new Error("secret sql"), registry).body).toEqual({
      code: 13,
      message: "internal error",
      details: [],
    });
  });
});
