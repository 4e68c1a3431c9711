import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { listPageTokens } from "./paging.js";

/**
 * Tokens issued by the service's own page-token code before it moved to mesh/pagination
 * (domain/page-token.ts: filterDigest / encodePageToken), for these exact filters and keys.
 * Clients may hold them: they must keep decoding, and the same page must get the same token.
 */
const RELEASED = {
  runs: {
    filters: ["p-1", "wi-1", "t-1", "agent-1", [1, 2]],
    key: ["2026-01-01T00:00:00.000Z", "0b5c0d7e-0000-4000-8000-000000000001"],
    token:
      "eyJrIjpbIjIwMjYtMDEtMDFUMDA6MDA6MDAuMDAwWiIsIjBiNWMwZDdlLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMSJdLCJmIjoicE5JT0RFWlcySS1WRFNqTCJ9",
  },
  infoRequests: {
    filters: ["p-1", "", [3]],
    key: ["2026-01-02T03:04:05.678Z", "0b5c0d7e-0000-4000-8000-000000000002"],
    token:
      "eyJrIjpbIjIwMjYtMDEtMDJUMDM6MDQ6MDUuNjc4WiIsIjBiNWMwZDdlLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMiJdLCJmIjoiaDdzejRIeEQ4b2VLT0FSdSJ9",
  },
  agents: {
    filters: [[1], ["region=eu", "gpu!=true"], "docker", ""],
    key: ["worker-07"],
    token: "eyJrIjpbIndvcmtlci0wNyJdLCJmIjoiZmxESFU5YUJEWXVNM1ptOCJ9",
  },
} as const;

function refusal(attempt: () => unknown): string | undefined {
  try {
    attempt();
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceError);
    const se = err as ServiceError;
    expect(se.code).toBe(Code.INVALID_ARGUMENT);
    expect(se.message).toBe("invalid page_token");
    const [violation] = se.findDetail(BadRequestSchema)?.fieldViolations ?? [];
    expect(violation?.field).toBe("page_token");
    return violation?.description;
  }
  return undefined;
}

describe("agent-manager page tokens", () => {
  it("issue and read exactly the tokens released before the switch to mesh", () => {
    for (const [list, { filters, key, token }] of Object.entries(RELEASED)) {
      const pages = listPageTokens(filters, key.length);
      expect(pages.encode(key), list).toBe(token);
      expect(pages.keyOf(token), list).toEqual(key);
    }
    expect(JSON.parse(Buffer.from(RELEASED.runs.token, "base64url").toString("utf8"))).toEqual({
      k: RELEASED.runs.key,
      f: "pNIODEZW2I-VDSjL",
    });
    // The fingerprint is of the JSON as given (key order kept), bigints as decimal strings.
    const withBigint = listPageTokens([12345678901234567890n, { b: 1, a: 2 }], 1).encode(["x"]);
    expect(JSON.parse(Buffer.from(withBigint, "base64url").toString()).f).toBe("JjJOrEU5B_gdY4Bz");
  });

  it("read an empty token as the first page", () => {
    expect(listPageTokens(RELEASED.agents.filters, 1).keyOf("")).toBeUndefined();
  });

  it("refuse other filters and malformed tokens with the page_token violations they always had", () => {
    const { filters, token } = RELEASED.runs;
    expect(refusal(() => listPageTokens([...filters.slice(0, 4), [1]], 2).keyOf(token))).toBe(
      "was issued for other filters",
    );
    const b64 = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");
    const f = "pNIODEZW2I-VDSjL";
    for (const bad of [
      "!!",
      "garbage",
      b64(null),
      b64({ k: [1, "x"], f }),
      b64({ k: ["x"], f }),
      b64({ f }),
    ]) {
      expect(
        refusal(() => listPageTokens(filters, 2).keyOf(bad)),
        bad,
      ).toBe("is not a valid page token");
    }
  });
});
