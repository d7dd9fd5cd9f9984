// Open a trace by its id: 32 hex digits (or 16, left-padded as the API does), anything else
// explained beside the field rather than sent.
import { useState } from "preact/hooks";
import { href, navigate } from "../router";
import { normalizeTraceId } from "./params";
import "./search.css";

export function LookupForm() {
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="lookup"
      role="search"
      aria-label="Open a trace by id"
      onSubmit={(e) => {
        e.preventDefault();
        const found = normalizeTraceId(text);
        if ("error" in found) setError(found.error);
        else {
          setError(null);
          navigate(href(`/traces/${found.id}`));
        }
      }}
    >
      <input
        name="traceId"
        aria-label="Trace id"
        placeholder="Trace id (32 or 16 hex digits)"
        value={text}
        spellcheck={false}
        autocomplete="off"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? "lookup-error" : undefined}
        onInput={(e) => {
          setText((e.target as HTMLInputElement).value);
          setError(null);
        }}
      />
      <button type="submit">Open trace</button>
      {error && (
        <span id="lookup-error" class="lookup-error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}
