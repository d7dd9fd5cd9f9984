import { describe, expect, it } from "vitest";
import { logQuery, logsPageQuery } from "./logquery";

const scope = { traceId: "ab".repeat(16), startMs: 1_700_000_000_000.4, endMs: 1_700_000_005_000.6 };

describe("logQuery", () => {
  it("reads the trace's window a minute either side, in whole ms", () => {
    expect(logQuery(scope)).toEqual({
      traceId: scope.traceId,
      start: 1_699_999_940_000,
      end: 1_700_000_065_001,
      limit: 100,
    });
  });
  it("adds the span and the cursor when given", () => {
    const q = logQuery({ ...scope, spanId: "cd".repeat(8) }, "next-page");
    expect(q.spanId).toBe("cd".repeat(8));
    expect(q.cursor).toBe("next-page");
  });
});

describe("logsPageQuery", () => {
  it("gives the Logs page the same ids and window, without paging", () => {
    const q = logsPageQuery({ ...scope, spanId: "cd".repeat(8) });
    expect(q.get("traceId")).toBe(scope.traceId);
    expect(q.get("spanId")).toBe("cd".repeat(8));
    expect(q.get("start")).toBe("1699999940000");
    expect(q.has("limit")).toBe(false);
  });
});
