// The service pickers of the search forms and the live view: the services of the last
// week, one request shape for all of them.
import { apiGet } from "./api";

export const PICKER_WINDOW_MS = 7 * 86_400_000;

type Count = "spanCount" | "logCount" | "metricPointCount";

/** Names of the services seen in the last week; with `having`, only those with such items. */
export async function serviceNames(signal?: AbortSignal, having?: Count): Promise<string[]> {
  const found = await apiGet<{ services: ({ name: string } & Partial<Record<Count, number>>)[] }>(
    "/api/services",
    { start: Date.now() - PICKER_WINDOW_MS },
    signal,
  );
  return found.services.filter((s) => having === undefined || (s[having] ?? 0) > 0).map((s) => s.name);
}
