// One stable colour per service name, the same in every view (timeline, flame graph,
// scatter, map), chosen by a string hash so it survives reloads and other traces.
const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
  "#ff9da7", "#9c755f", "#8cd17d", "#a0cbe8", "#ffbe7d", "#d4a6c8",
  "#86bcb6", "#f1ce63", "#79706e", "#b6992d",
] as const;

export function hashString(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

export function serviceColor(service: string): string {
  return PALETTE[hashString(service) % PALETTE.length] ?? PALETTE[0];
}

export const ERROR_COLOR = "#d62728";
