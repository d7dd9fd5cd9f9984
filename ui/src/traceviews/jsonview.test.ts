import { describe, expect, it } from "vitest";
import { prettyPrefix, sizeText } from "./jsonview";

const SAMPLE = {
  resourceSpans: [
    {
      resource: { attributes: [{ key: "service.name", value: { stringValue: "a \"quoted\", {braced} [x]: y\\" } }] },
      scopeSpans: [{ scope: {}, spans: [{ traceId: "ab", kind: 2, flags: -1.5e-7, ok: true, none: null, empty: [] }] }],
    },
  ],
};

describe("prettyPrefix", () => {
  it("indents exactly as JSON.stringify does when nothing is cut", () => {
    const compact = JSON.stringify(SAMPLE);
    expect(prettyPrefix(compact, Infinity)).toEqual({ text: JSON.stringify(SAMPLE, null, 2), truncated: false });
    // Already indented input comes out the same.
    expect(prettyPrefix(JSON.stringify(SAMPLE, null, 4), Infinity).text).toBe(JSON.stringify(SAMPLE, null, 2));
  });

  it("stops soon after the limit and says the text was cut", () => {
    const big = JSON.stringify({ spans: Array.from({ length: 20_000 }, (_, i) => ({ i, name: `span ${i}` })) });
    const full = JSON.stringify(JSON.parse(big), null, 2);
    const cut = prettyPrefix(big, 1000);
    expect(cut.truncated).toBe(true);
    expect(cut.text.length).toBeGreaterThanOrEqual(1000);
    expect(cut.text.length).toBeLessThan(1100);
    expect(full.startsWith(cut.text)).toBe(true);
  });
});

describe("sizeText", () => {
  it("reads as bytes, kilobytes or megabytes", () => {
    expect(sizeText(512)).toBe("512 B");
    expect(sizeText(2048)).toBe("2.0 KB");
    expect(sizeText(5 * 1024 * 1024)).toBe("5.0 MB");
  });
});
