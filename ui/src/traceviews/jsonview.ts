// Pretty-printing the start of a large JSON text. A 50,000-span trace is tens of megabytes of
// OTLP/JSON: indenting all of it (JSON.stringify(v, null, 2)) and putting it in the DOM would
// stall the tab, so the view indents only as much as it shows, walking the compact text once.

export interface Pretty {
  readonly text: string;
  readonly truncated: boolean;
}

/** `json` (valid, compact or not) indented as JSON.stringify(v, null, 2) would, cut after about `maxChars`. */
export function prettyPrefix(json: string, maxChars: number, indent = "  "): Pretty {
  const out: string[] = [];
  let length = 0;
  let depth = 0;
  let i = 0;
  const n = json.length;
  const push = (s: string): void => {
    out.push(s);
    length += s.length;
  };
  const newline = (): void => push(`\n${indent.repeat(depth)}`);
  while (i < n && length < maxChars) {
    const c = json[i]!;
    if (c === '"') {
      // Copy the whole string token, escapes included.
      let j = i + 1;
      while (j < n && json[j] !== '"') j += json[j] === "\\" ? 2 : 1;
      push(json.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    if (c === "{" || c === "[") {
      let j = i + 1;
      while (j < n && /\s/.test(json[j]!)) j++;
      const close = c === "{" ? "}" : "]";
      if (json[j] === close) {
        push(c + close);
        i = j + 1;
        continue;
      }
      push(c);
      depth++;
      newline();
    } else if (c === "}" || c === "]") {
      depth--;
      newline();
      push(c);
    } else if (c === ",") {
      push(",");
      newline();
    } else if (c === ":") {
      push(": ");
    } else if (!/\s/.test(c)) {
      // A number, true, false or null: copied up to the next structural character.
      let j = i + 1;
      while (j < n && !/[\s,:{}[\]"]/.test(json[j]!)) j++;
      push(json.slice(i, j));
      i = j;
      continue;
    }
    i++;
  }
  return { text: out.join(""), truncated: i < n };
}

/** "12.3 MB" for a character count (close enough to bytes for a size hint). */
export function sizeText(chars: number): string {
  if (chars < 1024) return `${chars} B`;
  if (chars < 1024 * 1024) return `${(chars / 1024).toFixed(1)} KB`;
  return `${(chars / 1024 / 1024).toFixed(1)} MB`;
}
