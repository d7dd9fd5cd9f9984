// Bounded holding of live rows: the visible list keeps the newest `cap` rows, and while the
// view is paused arrivals wait in a buffer that keeps the newest ones and counts the rest.

/** `newest` (oldest first, as they arrived) on top of `list` (newest first), at most `cap`. */
export function prependCapped<T>(list: readonly T[], newest: readonly T[], cap: number): T[] {
  const fresh = newest.slice(Math.max(0, newest.length - cap)).reverse();
  return [...fresh, ...list.slice(0, Math.max(0, cap - fresh.length))];
}

export class PauseBuffer<T> {
  private items: T[] = [];
  /** Everything that arrived since the last take(), kept or not. */
  received = 0;

  constructor(readonly cap: number) {}

  push(batch: readonly T[]): void {
    this.received += batch.length;
    this.items.push(...batch);
    // Trimmed in chunks, not per push: one splice per cap's worth of overflow.
    if (this.items.length > this.cap * 2) this.items = this.items.slice(-this.cap);
  }

  /** Arrivals that were not kept (only the newest `cap` are). */
  get dropped(): number {
    return Math.max(0, this.received - this.cap);
  }

  /** The kept rows, oldest first; the buffer is empty afterwards. */
  take(): T[] {
    const kept = this.items.slice(-this.cap);
    this.items = [];
    this.received = 0;
    return kept;
  }
}
