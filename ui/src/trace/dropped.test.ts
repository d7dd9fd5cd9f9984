import { describe, expect, it } from "vitest";
import { droppedTrace, keepDropped, MAX_DROPPED, onDropped } from "./dropped";
import { span } from "./testspans";

describe("dropped traces", () => {
  it("are found by id in any case, newest kept, the oldest forgotten past the cap", () => {
    let calls = 0;
    const stop = onDropped(() => calls++);
    const ids = Array.from({ length: MAX_DROPPED + 2 }, (_, i) => `ABC${i}`);
    for (const id of ids) keepDropped(id, [span({ id, start: 0, end: 1 })]);
    stop();
    keepDropped("after", []);
    expect(calls).toBe(ids.length);
    expect(droppedTrace("abc0")).toBeUndefined();
    expect(droppedTrace("abc1")).toBeUndefined();
    expect(droppedTrace(`abc${MAX_DROPPED + 1}`)?.[0]?.spanId).toBe(`ABC${MAX_DROPPED + 1}`);
  });

  it("a trace dropped again becomes the newest", () => {
    for (let i = 0; i < MAX_DROPPED; i++) keepDropped(`t${i}`, []);
    keepDropped("t0", []);
    keepDropped("one-more", []);
    expect(droppedTrace("t0")).toBeDefined();
    expect(droppedTrace("t1")).toBeUndefined();
  });
});
