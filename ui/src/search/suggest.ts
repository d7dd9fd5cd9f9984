// Autocomplete suggestions from the API: asked a moment after typing stops (so a word
// typed is one request, not one per key), a superseded answer ignored.
import { useEffect, useState } from "preact/hooks";
import { apiGet, isAbort } from "../api";
import { PICKER_WINDOW_MS } from "../services";
import type { AttributeValue } from "../types";

export const DEBOUNCE_MS = 200;
// Service and operation names: a week, so a service quiet for a day can still be picked.
const WINDOW_MS = PICKER_WINDOW_MS;

export interface Suggestions {
  readonly items: readonly string[];
  readonly error: unknown;
}

function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/**
 * The answer of `load()`, asked again when `deps` change; none while `enabled` is false.
 * A superseded answer is dropped rather than its request aborted: they are few, and an
 * abort shows as a failed request in the browser's log.
 */
export function useLatest(
  load: () => Promise<readonly string[]>,
  enabled: boolean,
  deps: readonly unknown[],
): Suggestions {
  const [result, setResult] = useState<Suggestions>({ items: [], error: null });
  useEffect(() => {
    if (!enabled) {
      setResult({ items: [], error: null });
      return;
    }
    let stale = false;
    load().then(
      (items) => {
        if (!stale) setResult({ items, error: null });
      },
      (error: unknown) => {
        if (!stale && !isAbort(error)) setResult({ items: [], error });
      },
    );
    return () => {
      stale = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [enabled, ...deps]);
  return result;
}

/** Suggestions from `load(text)`, asked once `text` has settled. */
export function useSuggestions(
  load: (text: string) => Promise<readonly string[]>,
  text: string,
  enabled: boolean,
  deps: readonly unknown[],
): Suggestions {
  const settled = useDebounced(text, DEBOUNCE_MS);
  return useLatest(() => load(settled), enabled, [settled, ...deps]);
}

function since(): number {
  return Date.now() - WINDOW_MS;
}

/** Attribute values are typed; a filter is text the API matches by type (500 and "500"). */
export function valueText(value: AttributeValue): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Where the suggestions come from: the window the search would read. */
export interface Window {
  readonly start: number;
  readonly end: number | null;
}

export async function attributeKeys(prefix: string, window: Window): Promise<readonly string[]> {
  const found = await apiGet<{ keys: string[] }>("/api/attributes", { signal: "traces", prefix, ...window, limit: 50 });
  return found.keys;
}

export async function attributeValues(key: string, prefix: string, window: Window): Promise<readonly string[]> {
  const found = await apiGet<{ values: AttributeValue[] }>(`/api/attributes/${encodeURIComponent(key)}/values`, {
    signal: "traces",
    prefix,
    ...window,
    limit: 50,
  });
  return [...new Set(found.values.map(valueText))];
}

export async function operationNames(service: string, signal?: AbortSignal): Promise<readonly string[]> {
  const found = await apiGet<{ operations: { name: string }[] }>(
    `/api/services/${encodeURIComponent(service)}/operations`,
    { start: since() },
    signal,
  );
  return [...new Set(found.operations.map((o) => o.name))].sort();
}
