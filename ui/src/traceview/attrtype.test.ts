import { describe, expect, it } from "vitest";
import { attrType, describeType, typedAttributes } from "./attrtype";

describe("attrType", () => {
  it("tells JSON numbers apart as int and double", () => {
    expect(attrType(500)).toBe("int");
    expect(attrType(-3)).toBe("int");
    expect(attrType(0.25)).toBe("double");
  });
  it("reads a decimal string beyond 2^53 as an int, a smaller one as text", () => {
    expect(attrType("9223372036854775807")).toBe("int");
    expect(attrType("-9007199254740993")).toBe("int");
    expect(attrType("9007199254740991")).toBe("string");
    expect(attrType("12345")).toBe("string");
    expect(attrType("1e400")).toBe("string");
  });
  it("names bool, array, kvlist and empty", () => {
    expect(attrType(true)).toBe("bool");
    expect(attrType(["a"])).toBe("array");
    expect(attrType({ a: 1 })).toBe("kvlist");
    expect(attrType(null)).toBe("empty");
  });
  it("describes homogeneous arrays by element type", () => {
    expect(describeType([1, 2])).toBe("array<int>");
    expect(describeType([1, "x"])).toBe("array");
    expect(describeType([])).toBe("array");
  });
  it("lists attributes by key", () => {
    expect(typedAttributes({ b: 1.5, a: "x" })).toEqual([
      { key: "a", value: "x", type: "string" },
      { key: "b", value: 1.5, type: "double" },
    ]);
    expect(typedAttributes(undefined)).toEqual([]);
  });
});
