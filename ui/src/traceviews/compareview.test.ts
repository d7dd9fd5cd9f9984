import { describe, expect, it } from "vitest";
import { diffTraces } from "../trace/diff";
import { buildTree } from "../trace/tree";
import { deepChain, spans } from "../trace/testspans";
import { deltaText, diffRows, differsBelow } from "./compareview";

const a = buildTree(
  spans(
    { id: "r", service: "web", name: "GET /", start: 0, end: 100 },
    { id: "s", parent: "r", service: "db", name: "select", start: 10, end: 20 },
    { id: "s1", parent: "s", service: "db", name: "parse", start: 11, end: 12 },
    { id: "c", parent: "r", service: "cache", name: "get", start: 30, end: 40 },
  ),
);
const b = buildTree(
  spans(
    { id: "R", service: "web", name: "GET /", start: 0, end: 150 },
    { id: "S", parent: "R", service: "db", name: "select", start: 10, end: 20 },
    { id: "S1", parent: "S", service: "db", name: "parse", start: 11, end: 12 },
    { id: "P", parent: "R", service: "pay", name: "charge", start: 50, end: 140 },
  ),
);
const diff = diffTraces(a, b);
const label = (n: { service: string; operation: string }) => `${n.service}:${n.operation}`;

describe("diffRows", () => {
  it("lists every node, or hides what lies below a collapsed one", () => {
    expect(diffRows(diff, new Set(), null).map(label)).toEqual(["web:GET /", "db:select", "db:parse", "cache:get", "pay:charge"]);
    const select = diff.nodes.find((n) => n.operation === "select")!;
    expect(diffRows(diff, new Set([select.id]), null).map(label)).toEqual(["web:GET /", "db:select", "cache:get", "pay:charge"]);
    expect(diffRows(diff, new Set([diff.roots[0]!.id]), null).map(label)).toEqual(["web:GET /"]);
  });

  it("keeps only differences and the path to them when asked", () => {
    expect(diffRows(diff, new Set(), differsBelow(diff)).map(label)).toEqual(["web:GET /", "cache:get", "pay:charge"]);
  });

  it("stays linear on a 50,000-deep chain", () => {
    const t = buildTree(deepChain(50_000));
    const d = diffTraces(t, t);
    const started = performance.now();
    expect(diffRows(d, new Set([d.nodes[10]!.id]), null)).toHaveLength(11);
    expect(diffRows(d, new Set(), differsBelow(d))).toHaveLength(0);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("deltaText", () => {
  it("says how much slower or faster B is, and nothing for one-sided nodes", () => {
    const root = diff.roots[0]!;
    expect(deltaText(root)).toBe("+50µs (+50%)");
    const select = diff.nodes.find((n) => n.operation === "select")!;
    expect(deltaText(select)).toBe("±0");
    expect(deltaText(diff.nodes.find((n) => n.operation === "charge")!)).toBe("");
    const faster = diffTraces(b, a).roots[0]!;
    expect(deltaText(faster)).toBe("-50µs (-33%)");
  });
});
