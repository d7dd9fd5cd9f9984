// Attribute tables with each value's OTLP type, and the copy button of ids and values.
import { useEffect, useState } from "preact/hooks";
import type { AttributeValue as AttrValue } from "../trace/model";
import { typedAttributes } from "./attrtype";

function valueText(value: AttrValue): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") return JSON.stringify(value, null, 1);
  return String(value);
}

export function AttrTable({ attrs, label }: { attrs: Readonly<Record<string, AttrValue>> | undefined; label?: string }) {
  const rows = typedAttributes(attrs);
  if (rows.length === 0) return <p class="muted tv-none">none</p>;
  return (
    <table class="grid tv-attrs" aria-label={label}>
      <tbody>
        {rows.map((a) => (
          <tr key={a.key} data-attr={a.key}>
            <th scope="row" class="mono">
              {a.key}
            </th>
            <td class="mono tv-value">{valueText(a.value)}</td>
            <td class="tv-type muted" data-testid="attr-type">
              {a.type}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), 1500);
    return () => clearTimeout(timer);
  }, [state]);
  return (
    <button
      type="button"
      class="tv-copy"
      aria-label={`Copy ${label}`}
      onClick={() => {
        // Clipboard access can be refused (permissions, an insecure origin): say so in place.
        const clip = navigator.clipboard as Clipboard | undefined;
        if (!clip) {
          setState("failed");
          return;
        }
        clip.writeText(text).then(
          () => setState("copied"),
          () => setState("failed"),
        );
      }}
    >
      {state === "copied" ? "Copied" : state === "failed" ? "Copy refused" : "Copy"}
    </button>
  );
}
