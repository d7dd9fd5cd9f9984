// The URL is the UI's state: every view is parsed from location and reached by navigate(),
// so a copied link reproduces it and back/forward work (SPEC §9 paths).
import { useEffect, useState } from "preact/hooks";

export type RouteName =
  | "traces"
  | "trace"
  | "compare"
  | "logs"
  | "live"
  | "notfound";

export interface Route {
  readonly name: RouteName;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly path: string;
}

export const BASE = "/ui";

const PATTERNS: readonly [RouteName, RegExp, readonly string[]][] = [
  ["traces", /^\/traces\/?$/, []],
  ["trace", /^\/traces\/([^/]+)\/?$/, ["traceId"]],
  ["compare", /^\/compare\/([^/]+)\/([^/]+)\/?$/, ["a", "b"]],
  ["logs", /^\/logs\/?$/, []],
  ["live", /^\/live\/?$/, []],
];

export function parseRoute(pathname: string, search: string): Route {
  const query = new URLSearchParams(search);
  let rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  if (rest === "" || rest === "/") rest = "/traces";
  for (const [name, pattern, keys] of PATTERNS) {
    const match = pattern.exec(rest);
    if (!match) continue;
    const params: Record<string, string> = {};
    try {
      keys.forEach((key, i) => {
        params[key] = decodeURIComponent(match[i + 1] ?? "");
      });
    } catch {
      // A truncated or hand-edited link ("%E0%A4%A"): no view, but never a blank page.
      return { name: "notfound", params: {}, query, path: rest };
    }
    return { name, params, query, path: rest };
  }
  return { name: "notfound", params: {}, query, path: rest };
}

const CHANGE_EVENT = "otterscope:navigate";

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = to.startsWith(BASE) ? to : BASE + to;
  if (url === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.dispatchEvent(new Event(CHANGE_EVENT));
}

/** Rewrite the current URL's query: null or "" removes a key, arrays repeat it. */
export function withQuery(
  query: URLSearchParams,
  patch: Record<string, string | number | null | undefined | readonly string[]>,
): URLSearchParams {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(patch)) {
    next.delete(key);
    if (Array.isArray(value)) for (const v of value) next.append(key, v);
    else if (value !== null && value !== undefined && value !== "") next.set(key, String(value));
  }
  return next;
}

export function href(path: string, query?: URLSearchParams): string {
  const text = query?.toString() ?? "";
  return BASE + path + (text ? `?${text}` : "");
}

function current(): Route {
  return parseRoute(location.pathname, location.search);
}

export function useRoute(): Route {
  const [route, setRoute] = useState<Route>(current);
  useEffect(() => {
    const update = () => setRoute(current());
    window.addEventListener("popstate", update);
    window.addEventListener(CHANGE_EVENT, update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener(CHANGE_EVENT, update);
    };
  }, []);
  return route;
}

/** Same-app links navigate without a page load; modified clicks keep the browser's way. */
export function interceptLinks(root: Document): void {
  root.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = (event.target as Element | null)?.closest?.("a");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(`${BASE}/`)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}
