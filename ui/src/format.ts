// Times and durations as people read them. API times are nanosecond decimal strings;
// the UI works in milliseconds since the epoch (a double keeps µs for centuries).
import type { TimeZone } from "./prefs";

export function nsToMs(ns: string | number | bigint): number {
  if (typeof ns === "number") return ns / 1e6;
  const text = String(ns);
  if (text.length <= 6) return Number(text) / 1e6;
  return Number(text.slice(0, -6)) + Number(text.slice(-6)) / 1e6;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** `2026-12-02 12:09:01.123` in local time or UTC (with a trailing `Z`). */
export function formatTime(ms: number, zone: TimeZone, withDate = true): string {
  const d = new Date(ms);
  const utc = zone === "utc";
  const y = utc ? d.getUTCFullYear() : d.getFullYear();
  const mo = (utc ? d.getUTCMonth() : d.getMonth()) + 1;
  const day = utc ? d.getUTCDate() : d.getDate();
  const h = utc ? d.getUTCHours() : d.getHours();
  const mi = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  const milli = utc ? d.getUTCMilliseconds() : d.getMilliseconds();
  const clock = `${pad(h)}:${pad(mi)}:${pad(s)}.${pad(milli, 3)}`;
  const date = `${y}-${pad(mo)}-${pad(day)} `;
  return (withDate ? date : "") + clock + (utc ? "Z" : "");
}

/** `850µs`, `12.3ms`, `1.25s`, `2m 3s`, `1h 2m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  const abs = Math.abs(ms);
  const sign = ms < 0 ? "-" : "";
  if (abs < 1) return `${sign}${Math.round(abs * 1000)}µs`;
  if (abs < 10) return `${sign}${trim(abs.toFixed(2))}ms`;
  if (abs < 1000) return `${sign}${trim(abs.toFixed(1))}ms`;
  if (abs < 60_000) return `${sign}${trim((abs / 1000).toFixed(2))}s`;
  if (abs < 3_600_000) {
    const m = Math.floor(abs / 60_000);
    return `${sign}${m}m ${Math.round((abs - m * 60_000) / 1000)}s`;
  }
  const h = Math.floor(abs / 3_600_000);
  return `${sign}${h}h ${Math.round((abs - h * 3_600_000) / 60_000)}m`;
}

function trim(fixed: string): string {
  return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
}

/** The `<input type="datetime-local">` value for a time, in the chosen zone. */
export function toInputValue(ms: number, zone: TimeZone): string {
  return formatTime(ms, zone).replace(" ", "T").replace("Z", "").slice(0, 23);
}

/** Parse a datetime-local value back; null when it is not a time. */
export function fromInputValue(value: string, zone: TimeZone): number | null {
  if (!value) return null;
  const ms = zone === "utc" ? Date.parse(`${value}Z`) : Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}
