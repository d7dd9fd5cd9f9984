// Loading API data for a view: one request per change of its inputs, the previous one
// aborted, and the outcome as a value the view renders (never a thrown error).
import { useEffect, useState } from "preact/hooks";
import { isAbort } from "./api";

export type Loaded<T> =
  | { readonly state: "loading" }
  | { readonly state: "ok"; readonly data: T }
  | { readonly state: "error"; readonly error: unknown };

export function useApi<T>(load: (signal: AbortSignal) => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [result, setResult] = useState<Loaded<T>>({ state: "loading" });
  useEffect(() => {
    const controller = new AbortController();
    setResult({ state: "loading" });
    load(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setResult({ state: "ok", data });
      },
      (error: unknown) => {
        if (!controller.signal.aborted && !isAbort(error)) setResult({ state: "error", error });
      },
    );
    return () => controller.abort();
    // The caller lists what the request depends on, as with useEffect.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return result;
}
