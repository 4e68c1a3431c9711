import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { listPageTokens, seqOf } from "./paging.js";

/**
 * Tokens issued by the service's own page-token code before it moved to mesh/pagination
 * (handlers/paging.ts: fingerprint / encodeToken), for these exact filters and keys, built as
 * the handlers build them (undefined members, times from Timestamps as ISO strings, seqs from
 * bigints). Clients may hold them: they must keep decoding, and the same page must get the same token.
 */
const start = timestampDate(timestampFromMs(1_700_000_000_123)).toISOString();
const end = timestampDate(timestampFromMs(1_700_086_400_000)).toISOString();
const RELEASED = {
  subscriptionsAllProjects: {
    filters: { projectId: "", enabled: undefined, channelType: 0, eventType: "" },
    key: [42n.toString()],
    token: "eyJrIjpbIjQyIl0sImYiOiJ2ZHFZbEZ5aVRyUXItaDZJIn0",
  },
  subscriptionsFiltered: {
    filters: { projectId: "p1", enabled: true, channelType: 2, eventType: "codex.events.v1.MemberAdded" },
    key: [9007199254740993n.toString()],
    token: "eyJrIjpbIjkwMDcxOTkyNTQ3NDA5OTMiXSwiZiI6ImJDSS1lRExiVmZRaTd5Ny0ifQ",
  },
  subscriptionsDisabled: {
    filters: { projectId: "p1", enabled: false, channelType: 0, eventType: "" },
    key: ["7"],
    token: "eyJrIjpbIjciXSwiZiI6Ik9CZkZweExKbEVtZ25VaC0ifQ",
  },
  deliveriesWithTimes: {
    filters: { s: "0b5c0d7e-0000-4000-8000-000000000001", o: 2, e: "evt-1", p: "", a: start, b: end },
    key: [18446744073709551615n.toString()],
    token: "eyJrIjpbIjE4NDQ2NzQ0MDczNzA5NTUxNjE1Il0sImYiOiI1N0hfVl9uWG93azFpNGdtIn0",
  },
  deliveriesNoTimes: {
    filters: { s: "", o: 0, e: "", p: "p1", a: undefined, b: undefined },
    key: ["3"],
    token: "eyJrIjpbIjMiXSwiZiI6IjhFWkZXdW53aURjX1B4T1AifQ",
  },
  deadLetters: {
    filters: { s: "0b5c0d7e-0000-4000-8000-000000000001", st: 1, p: "" },
    key: ["2026-01-02T03:04:05.678Z", "0b5c0d7e-0000-4000-8000-000000000002"],
    token:
      "eyJrIjpbIjIwMjYtMDEtMDJUMDM6MDQ6MDUuNjc4WiIsIjBiNWMwZDdlLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMiJdLCJmIjoiYkJQVzdyTlRtVXBFQUFjOCJ9",
  },
} as const;

const MALFORMED = { message: "bad page token", description: "is malformed" };
const OTHER_FILTERS = {
  message: "page token was issued for other filters",
  description: "keep every field but page_size unchanged between pages",
};

function refusal(attempt: () => unknown): { message: string; description: string | undefined } | undefined {
  try {
    attempt();
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceError);
    const se = err as ServiceError;
    expect(se.code).toBe(Code.INVALID_ARGUMENT);
    const [violation] = se.findDetail(BadRequestSchema)?.fieldViolations ?? [];
    expect(violation?.field).toBe("page_token");
    return { message: se.message, description: violation?.description };
  }
  return undefined;
}

describe("notification page tokens", () => {
  it("issue and read exactly the tokens released before the switch to mesh", () => {
    for (const [list, { filters, key, token }] of Object.entries(RELEASED)) {
      const pages = listPageTokens(filters, key.length);
      expect(pages.encode(key), list).toBe(token);
      expect(pages.keyOf(token), list).toEqual(key);
    }
    expect(
      seqOf(
        listPageTokens(RELEASED.deliveriesWithTimes.filters, 1).keyOf(RELEASED.deliveriesWithTimes.token),
      ),
    ).toBe(18446744073709551615n);
    expect(JSON.parse(Buffer.from(RELEASED.deadLetters.token, "base64url").toString("utf8"))).toEqual({
      k: RELEASED.deadLetters.key,
      f: "bBPW7rNTmUpEAAc8",
    });
    // The fingerprint is of the JSON as given (key order kept), bigints as decimal strings.
    const withBigint = listPageTokens([12345678901234567890n, { b: 1, a: 2 }], 1).encode(["x"]);
    expect(JSON.parse(Buffer.from(withBigint, "base64url").toString()).f).toBe("JjJOrEU5B_gdY4Bz");
  });

  it("read an empty token as the first page", () => {
    expect(listPageTokens(RELEASED.deadLetters.filters, 2).keyOf("")).toBeUndefined();
    expect(seqOf(listPageTokens(RELEASED.subscriptionsFiltered.filters, 1).keyOf(""))).toBeUndefined();
  });

  it("refuse other filters and malformed tokens with the messages and violations they always had", () => {
    const { filters, token } = RELEASED.subscriptionsFiltered;
    expect(refusal(() => listPageTokens({ ...filters, enabled: false }, 1).keyOf(token))).toEqual(
      OTHER_FILTERS,
    );
    expect(refusal(() => listPageTokens(RELEASED.subscriptionsAllProjects.filters, 1).keyOf(token))).toEqual(
      OTHER_FILTERS,
    );
    const b64 = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");
    const f = "bCI-eDLbVfQi7y7-";
    for (const bad of [
      "!!",
      "garbage",
      b64(null),
      b64(["1"]),
      b64({ k: [1], f }),
      b64({ k: ["1", "2"], f }),
      b64({ k: ["1"] }),
      b64({ k: ["1"], f: 1 }),
      b64({ f }),
    ]) {
      expect(
        refusal(() => listPageTokens(filters, 1).keyOf(bad)),
        bad,
      ).toEqual(MALFORMED);
    }
    for (const bad of ["-1", "1.5", "", "x"]) {
      expect(
        refusal(() => seqOf(listPageTokens(filters, 1).keyOf(b64({ k: [bad], f })))),
        bad,
      ).toEqual(MALFORMED);
    }
  });
});
