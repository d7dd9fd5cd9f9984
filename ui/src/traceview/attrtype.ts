// The OTLP type of an attribute value as the JSON API renders it (SPEC §5): integers beyond
// ±2^53 arrive as decimal strings, kvlists as objects. Bytes arrive as base64 strings and
// cannot be told from text, so they read as strings.
import type { AttributeValue as AttrValue } from "../trace/model";

export type AttrType = "string" | "int" | "double" | "bool" | "array" | "kvlist" | "empty";

const BIG_INT = /^-?[0-9]{16,}$/;

export function attrType(value: AttrValue): AttrType {
  if (value === null) return "empty";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "double";
  if (typeof value === "string") {
    // A decimal string is an int only where a number could not carry it exactly.
    return BIG_INT.test(value) && !Number.isSafeInteger(Number(value)) ? "int" : "string";
  }
  if (Array.isArray(value)) return "array";
  return "kvlist";
}

/** `array<int>` when every element has one type, else `array`. */
export function describeType(value: AttrValue): string {
  const t = attrType(value);
  if (t !== "array" || !Array.isArray(value) || value.length === 0) return t;
  const inner = new Set(value.map(attrType));
  return inner.size === 1 ? `array<${[...inner][0]}>` : "array";
}

export interface TypedAttr {
  readonly key: string;
  readonly value: AttrValue;
  readonly type: string;
}

/** Attributes sorted by key with their types, for the details tables. */
export function typedAttributes(attrs: Readonly<Record<string, AttrValue>> | undefined): TypedAttr[] {
  if (!attrs) return [];
  return Object.keys(attrs)
    .sort()
    .map((key) => ({ key, value: attrs[key]!, type: describeType(attrs[key]!) }));
}
