// Severity classes as OpenTelemetry defines them (SeverityNumber 1-4 TRACE, 5-8 DEBUG, ...,
// 21-24 FATAL, 0 unspecified) and the one colour each has in the list and the histogram.
export const SEVERITIES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] as const;
export type SeverityClass = (typeof SEVERITIES)[number] | "UNSPECIFIED";

/** Bottom to top in the stacked histogram, as GET /api/logs/volume orders its counts. */
export const VOLUME_ORDER: readonly SeverityClass[] = [...SEVERITIES, "UNSPECIFIED"];

// Concrete colours (a canvas cannot read CSS variables), readable on light and dark.
export const SEVERITY_COLORS: Readonly<Record<SeverityClass, string>> = {
  TRACE: "#9aa6b1",
  DEBUG: "#4e79a7",
  INFO: "#59a14f",
  WARN: "#e3a32b",
  ERROR: "#d62728",
  FATAL: "#8c1c6a",
  UNSPECIFIED: "#c7ccd1",
};

export function severityClass(severityNumber: number): SeverityClass {
  if (!Number.isFinite(severityNumber) || severityNumber < 1 || severityNumber > 24) return "UNSPECIFIED";
  return SEVERITIES[Math.floor((severityNumber - 1) / 4)] ?? "UNSPECIFIED";
}

/** The label a row shows: the sender's text when it gave one, else the class. */
export function severityLabel(severityNumber: number, severityText: string): string {
  return severityText || severityClass(severityNumber);
}
