import { describe, expect, it } from "vitest";
import { buildSearchIndex, nextMatch, parseQuery, prevMatch, searchTrace } from "./search";
import { buildTree } from "./tree";
import { LARGE, spans, wideTrace } from "./testspans";

const t = buildTree(
  spans(
    {
      id: "00000000000000aa",
      service: "frontend",
      name: "GET /checkout",
      start: 0,
      end: 100,
      attributes: { "http.method": "GET", "http.status_code": 200 },
    },
    {
      id: "00000000000000bb",
      parent: "00000000000000aa",
      service: "payments",
      name: "charge",
      start: 10,
      end: 50,
      error: true,
      attributes: { "card.type": "Visa", retries: 2 },
    },
    {
      id: "00000000000000cc",
      parent: "00000000000000aa",
      service: "db",
      name: "SELECT orders",
      start: 60,
      end: 90,
      resource: { "host.name": "db-7" },
    },
    {
      id: "1234567890abcdef",
      parent: "00000000000000bb",
      service: "payments",
      name: "fraud check",
      start: 20,
      end: 30,
      events: [{ at: 25, name: "rule.fired", attributes: { rule: "velocity" } }],
    },
  ),
);
const index = buildSearchIndex(t);

describe("searchTrace", () => {
  it("matches names, services, attribute keys and values case-insensitively, in row order", () => {
    expect(searchTrace(index, "payments")).toEqual(["00000000000000bb", "1234567890abcdef"]);
    expect(searchTrace(index, "checkout")).toEqual(["00000000000000aa"]);
    expect(searchTrace(index, "CARD.TYPE")).toEqual(["00000000000000bb"]);
    expect(searchTrace(index, "visa")).toEqual(["00000000000000bb"]);
    expect(searchTrace(index, "status_code=200")).toEqual(["00000000000000aa"]);
    expect(searchTrace(index, "db-7")).toEqual(["00000000000000cc"]);
    expect(searchTrace(index, "velocity")).toEqual(["1234567890abcdef"]);
    expect(searchTrace(index, "rule.fired")).toEqual(["1234567890abcdef"]);
  });

  it("needs every term to match", () => {
    expect(searchTrace(index, "payments fraud")).toEqual(["1234567890abcdef"]);
    expect(searchTrace(index, "payments select")).toEqual([]);
    expect(searchTrace(index, "   ")).toEqual([]);
    expect(parseQuery("  A  b ")).toEqual(["a", "b"]);
  });

  it("matches span ids whole or by a long enough prefix", () => {
    expect(searchTrace(index, "1234567890ABCDEF")).toEqual(["1234567890abcdef"]);
    expect(searchTrace(index, "123456")).toEqual(["1234567890abcdef"]);
    expect(searchTrace(index, "12345")).toEqual([]);
    expect(searchTrace(index, "00000000000000cc")).toEqual(["00000000000000cc"]);
  });

  it("does not match across two fields", () => {
    // name "charge" followed by service "payments": "chargepayments" is no span's text.
    expect(searchTrace(index, "chargepayments")).toEqual([]);
  });
});

describe("next and previous match", () => {
  it("steps forward and back with wrap-around", () => {
    const matches = ["00000000000000aa", "00000000000000bb", "00000000000000cc"];
    expect(nextMatch(t, matches, null)).toBe("00000000000000aa");
    expect(nextMatch(t, matches, "00000000000000aa")).toBe("00000000000000bb");
    expect(nextMatch(t, matches, "00000000000000cc")).toBe("00000000000000aa");
    expect(prevMatch(t, matches, "00000000000000aa")).toBe("00000000000000cc");
    expect(prevMatch(t, matches, "00000000000000cc")).toBe("00000000000000bb");
    expect(prevMatch(t, matches, null)).toBe("00000000000000cc");
    expect(nextMatch(t, [], null)).toBeNull();
    expect(prevMatch(t, [], "00000000000000aa")).toBeNull();
  });

  it("continues from a selected span that is not a match", () => {
    // Row order: aa, bb, 1234… (child of bb), cc. From 1234… the next match is cc.
    const matches = ["00000000000000aa", "00000000000000cc"];
    expect(nextMatch(t, matches, "1234567890abcdef")).toBe("00000000000000cc");
    expect(prevMatch(t, matches, "1234567890abcdef")).toBe("00000000000000aa");
  });

  it("searches a 50,000-span trace", LARGE, () => {
    const big = buildTree(wideTrace(50_000));
    const idx = buildSearchIndex(big);
    const hits = searchTrace(idx, "op7 svc3");
    // op = i % 11 === 7 and service = i % 7 === 3: i ≡ 73 (mod 77), 1 ≤ i < 50,000.
    expect(hits).toHaveLength(Math.floor((49_999 - 73) / 77) + 1);
    expect(hits.every((k) => big.byKey.get(k)!.span.name === "op7")).toBe(true);
    expect(nextMatch(big, hits, hits[hits.length - 1]!)).toBe(hits[0]);
  });
});
