import { describe, expect, it } from "vitest";
import type { TraceSummary } from "../types";
import { formatSort, nextSort, parseSort, sortTraces } from "./sort";

function trace(id: string, over: Partial<TraceSummary>): TraceSummary {
  return {
    traceId: id,
    rootService: "svc",
    rootName: "op",
    rootSpanMissing: false,
    startTimeUnixNano: "1764676800000000000",
    durationMs: 1,
    spanCount: 1,
    errorCount: 0,
    services: ["svc"],
    ...over,
  };
}

const a = trace("a", { durationMs: 30, spanCount: 2, rootService: "b-svc", startTimeUnixNano: "1764676800000000100" });
const b = trace("b", { durationMs: 5, spanCount: 9, rootService: "a-svc", errorCount: 2, startTimeUnixNano: "1764676800002000000" });
const c = trace("c", { durationMs: 30, spanCount: 1, rootService: "svc10", services: ["x", "y"], startTimeUnixNano: "999" });
const d = trace("d", { durationMs: 0.5, rootService: "svc9", startTimeUnixNano: "1764676800000000000" });
const all = [a, b, c, d];
const ids = (list: readonly TraceSummary[]) => list.map((t) => t.traceId).join("");

describe("sorting the results", () => {
  it("keeps the API's order without a sort", () => {
    expect(sortTraces(all, null)).toBe(all);
  });

  it("sorts by duration both ways, ties in the API's order", () => {
    expect(ids(sortTraces(all, { key: "duration", desc: true }))).toBe("acbd");
    expect(ids(sortTraces(all, { key: "duration", desc: false }))).toBe("dbac");
  });

  it("sorts by start at sub-millisecond precision and by counts", () => {
    expect(ids(sortTraces(all, { key: "start", desc: false }))).toBe("cdab");
    expect(ids(sortTraces(all, { key: "spans", desc: true }))).toBe("bacd");
    expect(ids(sortTraces(all, { key: "errors", desc: true }))).toBe("bacd");
  });

  it("sorts names as people do (svc9 before svc10)", () => {
    expect(ids(sortTraces(all, { key: "root", desc: false }))).toBe("badc");
    expect(ids(sortTraces(all, { key: "services", desc: false }))).toBe("abdc");
  });

  it("does not change its input", () => {
    sortTraces(all, { key: "duration", desc: false });
    expect(ids(all)).toBe("abcd");
  });

  it("reads and writes the URL form and flips on a second click", () => {
    expect(parseSort("-duration")).toEqual({ key: "duration", desc: true });
    expect(parseSort("root")).toEqual({ key: "root", desc: false });
    expect(parseSort("-bogus")).toBeNull();
    expect(formatSort({ key: "spans", desc: true })).toBe("-spans");
    expect(nextSort(null, "duration")).toEqual({ key: "duration", desc: true });
    expect(nextSort({ key: "duration", desc: true }, "duration")).toEqual({ key: "duration", desc: false });
    expect(nextSort({ key: "duration", desc: true }, "root")).toEqual({ key: "root", desc: false });
  });
});
