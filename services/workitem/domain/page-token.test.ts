import { describe, expect, it } from "vitest";
import { decodePageToken, encodePageToken, filterFingerprint, pageSize } from "./page-token.js";

describe("page tokens", () => {
  const f = filterFingerprint({ p: "proj", s: ["QUEUED"] });

  it("round-trip a cursor for the same filters, whatever their key order", () => {
    const token = encodePageToken([1700000000000, "id-1"], f);
    expect(decodePageToken(token, filterFingerprint({ s: ["QUEUED"], p: "proj" }), 2)).toEqual({
      ok: true,
      cursor: [1700000000000, "id-1"],
    });
    expect(decodePageToken("", f, 2)).toEqual({ ok: true, cursor: undefined });
  });

  it("refuse tokens issued for other filters, malformed ones and ones of another shape", () => {
    const token = encodePageToken([1, "x"], f);
    expect(decodePageToken(token, filterFingerprint({ p: "other" }), 2)).toMatchObject({ ok: false });
    expect(decodePageToken("not base64 json", f, 2)).toMatchObject({ ok: false });
    expect(decodePageToken(token, f, 3)).toMatchObject({ ok: false });
    expect(decodePageToken(Buffer.from('{"k":[{}],"f":"x"}').toString("base64url"), "x", 1)).toMatchObject({
      ok: false,
    });
  });

  it("clamp page sizes", () => {
    expect([
      pageSize(0, 50, 500),
      pageSize(-3, 50, 500),
      pageSize(7, 50, 500),
      pageSize(9999, 50, 500),
    ]).toEqual([50, 50, 7, 500]);
  });
});
