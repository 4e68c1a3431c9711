import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import type { RecordFilter } from "../domain/filter.js";
import { queryPageTokens } from "./paging.js";

/**
 * Tokens issued by the service's own page-token code before it moved to mesh/pagination
 * (domain/page-token.ts: queryFingerprint / encodePageToken), for these exact queries. Clients
 * may hold them: they must keep decoding, and the same page must get the same token.
 */
const filter: RecordFilter = {
  projectId: "p1",
  eventTypes: ["codex.events.v1.ProjectCreated"],
  eventNames: ["MemberAdded"],
  startTime: timestampFromMs(1_700_000_000_123),
  maxSequence: 9007199254740993n,
};
const RELEASED = [
  {
    filter,
    newestFirst: true,
    after: 9007199254740993n,
    fingerprint: "ecfd59a12df6a91a",
    token: "eyJ2IjoxLCJhZnRlciI6IjkwMDcxOTkyNTQ3NDA5OTMiLCJxIjoiZWNmZDU5YTEyZGY2YTkxYSJ9",
  },
  {
    filter: {},
    newestFirst: false,
    after: 42n,
    fingerprint: "304d6856242819ed",
    token: "eyJ2IjoxLCJhZnRlciI6IjQyIiwicSI6IjMwNGQ2ODU2MjQyODE5ZWQifQ",
  },
] as const;

const b64 = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");

function refusal(attempt: () => unknown): string | undefined {
  try {
    attempt();
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceError);
    const se = err as ServiceError;
    expect(se.code).toBe(Code.INVALID_ARGUMENT);
    const [violation] = se.findDetail(BadRequestSchema)?.fieldViolations ?? [];
    expect(violation?.field).toBe("page_token");
    expect(violation?.description).toBe(se.message);
    return se.message;
  }
  return undefined;
}

describe("audit page tokens", () => {
  it("issue and read exactly the tokens released before the switch to mesh", () => {
    for (const r of RELEASED) {
      const pages = queryPageTokens(r.filter, r.newestFirst);
      expect(pages.encode(r.after)).toBe(r.token);
      expect(pages.afterOf(r.token)).toBe(r.after);
      expect(JSON.parse(Buffer.from(r.token, "base64url").toString("utf8"))).toEqual({
        v: 1,
        after: r.after.toString(),
        q: r.fingerprint,
      });
    }
  });

  it("read an empty token as the first page", () => {
    expect(queryPageTokens({}, false).afterOf("")).toBeUndefined();
  });

  it("refuse tokens of another query, or malformed, with the messages they always had", () => {
    const [first] = RELEASED;
    expect(refusal(() => queryPageTokens(first.filter, false).afterOf(first.token))).toBe(
      "page_token belongs to a query with other filters",
    );
    expect(refusal(() => queryPageTokens({ projectId: "p2" }, true).afterOf(first.token))).toBe(
      "page_token belongs to a query with other filters",
    );
    const q = first.fingerprint;
    for (const bad of [
      "not-a-token",
      b64(null),
      b64({ v: 2, after: "1", q }),
      b64({ v: 1, after: 1, q }),
      b64({ v: 1, after: "-1", q }),
      b64({ v: 1, after: "12345678901234567890", q }),
      b64({ v: 1, q }),
    ]) {
      expect(
        refusal(() => queryPageTokens(first.filter, true).afterOf(bad)),
        bad,
      ).toBe("page_token is malformed");
    }
  });
});
