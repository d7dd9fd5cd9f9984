// Display preferences of this browser (time zone, theme). They change how a view looks,
// not which view it is, so they live in localStorage rather than in the URL.
import { useEffect, useState } from "preact/hooks";

export type TimeZone = "local" | "utc";
export type Theme = "system" | "light" | "dark";

export interface Prefs {
  readonly timeZone: TimeZone;
  readonly theme: Theme;
}

const KEY = "otterscope.prefs";
const EVENT = "otterscope:prefs";

function read(): Prefs {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? "{}") as Partial<Prefs>;
    return {
      timeZone: raw.timeZone === "utc" ? "utc" : "local",
      theme: raw.theme === "light" || raw.theme === "dark" ? raw.theme : "system",
    };
  } catch {
    return { timeZone: "local", theme: "system" };
  }
}

let prefs: Prefs = read();

export function getPrefs(): Prefs {
  return prefs;
}

export function setPrefs(patch: Partial<Prefs>): void {
  prefs = { ...prefs, ...patch };
  localStorage.setItem(KEY, JSON.stringify(prefs));
  applyTheme();
  window.dispatchEvent(new Event(EVENT));
}

export function applyTheme(): void {
  const root = document.documentElement;
  if (prefs.theme === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", prefs.theme);
}

export function usePrefs(): Prefs {
  const [value, setValue] = useState(prefs);
  useEffect(() => {
    const update = () => setValue(prefs);
    window.addEventListener(EVENT, update);
    return () => window.removeEventListener(EVENT, update);
  }, []);
  return value;
}
