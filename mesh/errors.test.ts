import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { BadRequestSchema, QuotaFailureSchema } from "../gen/google/rpc/error_details_pb.js";
import {
  aborted,
  Code,
  failedPrecondition,
  invalidArgument,
  resourceExhausted,
  ServiceError,
  STATUS_DETAILS_KEY,
  statusMetadata,
} from "./errors.js";

describe("ServiceError", () => {
  it("hides unknown errors behind INTERNAL but keeps the cause", () => {
    const cause = new Error("connection to 10.0.0.7:5432 refused");
    const err = ServiceError.from(cause);
    expect(err.code).toBe(Code.INTERNAL);
    expect(err.message).toBe("internal error");
    expect(err.cause).toBe(cause);
  });

  it("carries field violations that survive the wire format", () => {
    const err = invalidArgument("bad project", [{ field: "project.name", description: "must be a slug" }]);
    const md = statusMetadata(err);
    const wire = Object.assign(new Error("3 INVALID_ARGUMENT: bad project"), {
      code: Code.INVALID_ARGUMENT,
      details: "bad project",
      metadata: md,
    });
    const back = ServiceError.from(wire);
    expect(back.code).toBe(Code.INVALID_ARGUMENT);
    expect(back.findDetail(BadRequestSchema)?.fieldViolations[0]?.field).toBe("project.name");
  });

  it("survives a malformed details trailer with its code intact", () => {
    const md = new Metadata();
    md.set(STATUS_DETAILS_KEY, Buffer.from([0xff, 0xff, 0xff]));
    const back = ServiceError.from(
      Object.assign(new Error("x"), { code: Code.NOT_FOUND, details: "gone", metadata: md }),
    );
    expect(back.code).toBe(Code.NOT_FOUND);
    expect(back.message).toBe("gone");
  });

  it("exposes quota failures, retry delays and reasons", () => {
    const err = resourceExhausted("quota", {
      subject: "project:p1",
      description: "runs per day",
      retryAfterMs: 1500,
    });
    expect(err.findDetail(QuotaFailureSchema)?.violations[0]?.subject).toBe("project:p1");
    expect(err.retryAfterMs).toBe(1500);
    expect(aborted("stale").reason).toBe("ETAG_MISMATCH");
    expect(failedPrecondition("lease", [], "STALE_LEASE").reason).toBe("STALE_LEASE");
  });
});
