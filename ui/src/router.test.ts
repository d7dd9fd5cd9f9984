import { describe, expect, it } from "vitest";
import { parseRoute, withQuery } from "./router";

describe("parseRoute", () => {
  it("names every view of SPEC §9 this UI has", () => {
    expect(parseRoute("/ui/", "").name).toBe("traces");
    expect(parseRoute("/ui/traces", "?service=a").query.get("service")).toBe("a");
    const trace = parseRoute("/ui/traces/abc123", "?span=ff&view=stats");
    expect([trace.name, trace.params.traceId, trace.query.get("view")]).toEqual(["trace", "abc123", "stats"]);
    expect(parseRoute("/ui/compare/a/b", "").params).toEqual({ a: "a", b: "b" });
    expect(parseRoute("/ui/logs", "").name).toBe("logs");
    expect(parseRoute("/ui/live", "").name).toBe("live");
    expect(parseRoute("/ui/nowhere", "").name).toBe("notfound");
  });

  it("turns a malformed escape into the not-found view instead of throwing", () => {
    expect(parseRoute("/ui/traces/%E0%A4%A", "").name).toBe("notfound");
    expect(parseRoute("/ui/compare/%/x", "").name).toBe("notfound");
    expect(parseRoute("/ui/traces/%41", "").params.traceId).toBe("A");
  });
});

describe("withQuery", () => {
  it("sets, repeats and removes keys without touching the others", () => {
    const next = withQuery(new URLSearchParams("a=1&b=2&c=3"), { a: "9", b: null, d: ["x", "y"], c: "" });
    expect(next.toString()).toBe("a=9&d=x&d=y");
  });
});
