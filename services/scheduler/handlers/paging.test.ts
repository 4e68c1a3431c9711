import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { schedulerPageTokens } from "./paging.js";

const filters = { p: "proj", s: ["QUEUED", "RUNNING"], w: "" };
const shape = { arity: 3 };

describe("scheduler page tokens", () => {
  it("still read tokens issued before the switch to mesh ({f, k} with a hex fingerprint)", () => {
    const issued = Buffer.from(
      JSON.stringify({ f: "c7e518b33f540b82", k: [5, "2024-01-01 00:00:00+00", "t1"] }),
    ).toString("base64url");
    expect(schedulerPageTokens(filters).cursorOf(issued, shape)).toEqual([5, "2024-01-01 00:00:00+00", "t1"]);
  });

  it("round-trip, and refuse other filters or shapes with the contract's INVALID_ARGUMENT", () => {
    const token = schedulerPageTokens(filters).encode([1, "t", "id"]);
    expect(schedulerPageTokens({ ...filters }).cursorOf(token, shape)).toEqual([1, "t", "id"]);
    expect(schedulerPageTokens(filters).cursorOf("", shape)).toBeUndefined();
    for (const attempt of [
      () => schedulerPageTokens({ ...filters, w: "x" }).cursorOf(token, shape),
      () => schedulerPageTokens(filters).cursorOf(token, { arity: 2 }),
      () => schedulerPageTokens(filters).cursorOf("garbage", shape),
    ]) {
      let err: unknown;
      try {
        attempt();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ServiceError);
      const se = err as ServiceError;
      expect(se.code).toBe(Code.INVALID_ARGUMENT);
      expect(se.message).toBe("invalid page_token");
      expect(se.findDetail(BadRequestSchema)?.fieldViolations[0]?.field).toBe("page_token");
    }
  });
});
