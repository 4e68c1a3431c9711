import { describe, expect, it } from "vitest";
import { clampPageSize } from "./page-size.js";
import { PAGE_TOKEN_PROBLEMS, type PageTokenFormat, pageTokens } from "./page-token.js";

const b64 = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");

describe("pageTokens", () => {
  const filters = { s: 1, l: { b: "2", a: "1" }, n: "web" };

  it("round-trips a cursor for the same filters, whatever their key order", () => {
    const token = pageTokens(filters).encode([1700000000000, "id-1"]);
    const again = pageTokens({ n: "web", l: { a: "1", b: "2" }, s: 1 });
    expect(again.decode(token, { arity: 2 })).toEqual({ ok: true, cursor: [1700000000000, "id-1"] });
  });

  it("reads an empty token as the first page", () => {
    expect(pageTokens(filters).decode("")).toEqual({ ok: true, cursor: undefined });
  });

  it("refuses a token issued for other filters", () => {
    const token = pageTokens(filters).encode(["a"]);
    expect(pageTokens({ ...filters, n: "api" }).decode(token)).toEqual({
      ok: false,
      reason: "other-filters",
      problem: PAGE_TOKEN_PROBLEMS["other-filters"],
    });
  });

  it("refuses malformed tokens and cursors of the wrong shape", () => {
    const pages = pageTokens(filters);
    const fp = pages.fingerprint;
    const malformed = [
      "not base64 json",
      b64(null),
      b64([1]),
      b64({ k: [1] }),
      b64({ k: "x", f: fp }),
      b64({ k: [{}], f: fp }),
      b64({ k: [true], f: fp }),
      b64({ k: [1], f: 7 }),
    ];
    for (const token of malformed) {
      expect(pages.decode(token), token).toMatchObject({ ok: false, reason: "malformed" });
    }
    const token = pages.encode([1, "x"]);
    expect(pages.decode(token, { arity: 3 })).toMatchObject({ ok: false, reason: "malformed" });
    expect(pages.decode(token, { valid: (c) => typeof c[0] === "string" })).toMatchObject({
      ok: false,
      reason: "malformed",
    });
    expect(pages.decode(token, { arity: 2, valid: (c) => typeof c[0] === "number" })).toMatchObject({
      ok: true,
    });
  });

  it("reports an unusable token as a page_token violation", () => {
    const found: [string, string][] = [];
    const sink = { add: (field: string, description: string) => found.push([field, description]) };
    const pages = pageTokens(filters);
    expect(pages.cursorOf(pages.encode(["a"]), sink, { arity: 1 })).toEqual(["a"]);
    expect(pages.cursorOf("", sink)).toBeUndefined();
    expect(found).toEqual([]);
    expect(pages.cursorOf("garbage", sink)).toBeUndefined();
    expect(pageTokens({}).cursorOf(pages.encode(["a"]), sink)).toBeUndefined();
    expect(found).toEqual([
      ["page_token", PAGE_TOKEN_PROBLEMS.malformed],
      ["page_token", PAGE_TOKEN_PROBLEMS["other-filters"]],
    ]);
  });

  describe("stays compatible with tokens already issued", () => {
    it("default: {k, f} with a base64url digest of key-sorted JSON", () => {
      const pages = pageTokens(filters);
      expect(pages.fingerprint).toBe("0dtTFCx124-9nEFK");
      expect(pages.encode(["web", 3])).toBe(b64({ k: ["web", 3], f: "0dtTFCx124-9nEFK" }));
    });

    it("hex digest of JSON as given (tokens whose fingerprint came first)", () => {
      const format: PageTokenFormat = { fingerprint: { encoding: "hex", keyOrder: "as-given" } };
      const f = { p: "proj", s: ["QUEUED", "RUNNING"], w: "" };
      const issued = b64({ f: "c7e518b33f540b82", k: [5, "2024-01-01T00:00:00.000Z", "t1"] });
      expect(pageTokens(f, format).decode(issued, { arity: 3 })).toEqual({
        ok: true,
        cursor: [5, "2024-01-01T00:00:00.000Z", "t1"],
      });
    });

    it("named cursor fields ({t, i, f})", () => {
      const format: PageTokenFormat = { cursorFields: ["t", "i"] };
      const f = ["6d1f0c1e-0000-4000-8000-000000000001", "active", ""];
      const pages = pageTokens(f, format);
      const issued = b64({ t: "2024-01-01T00:00:00.000Z", i: "0b5c", f: "sJzvc2CJIxN2vOsC" });
      expect(pages.encode(["2024-01-01T00:00:00.000Z", "0b5c"])).toBe(issued);
      expect(pages.decode(issued)).toEqual({ ok: true, cursor: ["2024-01-01T00:00:00.000Z", "0b5c"] });
      expect(pages.decode(b64({ t: "2024-01-01T00:00:00.000Z", f: "sJzvc2CJIxN2vOsC" }))).toMatchObject({
        ok: false,
        reason: "malformed",
      });
    });

    it("another fingerprint property ({v, after, q})", () => {
      const format: PageTokenFormat = {
        fingerprint: { encoding: "hex", keyOrder: "as-given" },
        cursorFields: ["v", "after"],
        fingerprintField: "q",
      };
      const pages = pageTokens([{ projectId: "p1" }, false], format);
      const issued = b64({ v: 1, after: "42", q: pages.fingerprint });
      expect(pages.encode([1, "42"])).toBe(issued);
      expect(pages.decode(issued)).toEqual({ ok: true, cursor: [1, "42"] });
      expect(pages.decode(b64({ v: 1, after: "42", f: pages.fingerprint }))).toMatchObject({
        ok: false,
        reason: "malformed",
      });
      expect(pages.decode(b64({ v: 1, after: "42", q: "0000000000000000" }))).toMatchObject({
        ok: false,
        reason: "other-filters",
      });
    });
  });
});

describe("clampPageSize", () => {
  it("uses the default for 0 or less and cuts to the maximum", () => {
    const sizes = { default: 50, max: 500 };
    expect([0, -3, 7, 500, 9999].map((n) => clampPageSize(n, sizes))).toEqual([50, 50, 7, 500, 500]);
  });
});
