import { describe, expect, it } from "vitest";
import { fingerprint, stableJson } from "./fingerprint.js";

describe("stableJson", () => {
  it("sorts keys at every level and drops undefined members", () => {
    expect(stableJson({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: "x" } })).toBe(
      '{"a":{"c":"x","d":[2,{"z":1}]},"b":1}',
    );
  });

  it("writes bigints as strings, undefined in arrays as null, and dates as JSON.stringify does", () => {
    expect(stableJson([1n, undefined, null])).toBe('["1",null,null]');
    expect(stableJson({ at: new Date(0) })).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
    expect(stableJson({ at: new Date(0) })).not.toBe(stableJson({ at: new Date(1) }));
  });
});

describe("fingerprint", () => {
  it("is the same for equal values built in another order, unless asked to keep the order", () => {
    expect(fingerprint({ a: 1, b: 2 })).toBe(fingerprint({ b: 2, a: 1 }));
    expect(fingerprint({ a: 1, b: 2 }, { keyOrder: "as-given" })).not.toBe(
      fingerprint({ b: 2, a: 1 }, { keyOrder: "as-given" }),
    );
  });

  it("is SHA-256 in the requested text, cut to the requested length", () => {
    expect(fingerprint("x", { encoding: "hex" })).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint("x")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fingerprint("x", { length: 16 })).toBe(fingerprint("x").slice(0, 16));
    // Pinned: released page tokens and stored request hashes depend on these exact digests.
    expect(fingerprint({ b: 2, a: 1 })).toBe("QyWM_3g_5wNtikMDP4MK38YOwDc4JHNUisdCuIgpJ3c");
    expect(
      fingerprint({ p: "proj", s: ["QUEUED", "RUNNING"], w: "" }, { keyOrder: "as-given", encoding: "hex" }),
    ).toBe("c7e518b33f540b82fb90cdbe38f9b6743214e787dc9dd1b109d7325e3fb33b06");
  });
});
