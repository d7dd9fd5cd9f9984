// The live feed's connection: connect, subscribe, and after any drop (the server's 1013
// for a client that fell behind, a restart, a network blip) reconnect with exponential
// backoff, remembering the gap so the view can say which data it missed; a refusal of the
// credentials ends the feed instead of retrying it forever. Sockets and
// timers are passed in, so the state machine runs the same in a browser and in a test.

export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  random(): number;
}

export type LiveStatus = "connecting" | "open" | "reconnecting" | "stopped";

/** A stretch of time the feed was not connected, and why it ended the connection. */
export interface Gap {
  readonly from: number;
  readonly to: number;
  readonly code: number;
  readonly reason: string;
}

export interface LiveState {
  readonly status: LiveStatus;
  /** Failed attempts since the last stable connection. */
  readonly attempt: number;
  /** When the next attempt starts (status "reconnecting"). */
  readonly retryAt: number | null;
  /** The gap still open (disconnected since `from`), if any. */
  readonly down: { readonly since: number; readonly code: number; readonly reason: string } | null;
  /** Gaps closed by a reconnect, oldest first. */
  readonly gaps: readonly Gap[];
}

export const BASE_DELAY_MS = 500;
export const MAX_DELAY_MS = 30_000;
/** A connection open this long resets the backoff; shorter ones (a server that keeps
 * dropping the client) keep backing off. */
export const STABLE_MS = 10_000;
/** The close code of a policy refusal (the server's answer to a refused token when it
 * cannot answer the handshake with an HTTP status). */
export const POLICY_VIOLATION = 1008;
/** The server's close code for a client too slow to keep up (it missed data). */
export const TRY_AGAIN_LATER = 1013;

/** Delay before attempt `attempt` (0-based): doubling from BASE_DELAY_MS up to
 * MAX_DELAY_MS, with jitter in [50%, 100%] so many tabs do not reconnect in step. */
export function backoffDelay(attempt: number, random: number): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling * (0.5 + 0.5 * Math.min(1, Math.max(0, random))));
}

/** `otterscope.bearer.<base64url token>`: how a browser, which cannot set headers on a
 * WebSocket, hands the server its token (never in the URL). */
export function bearerProtocol(token: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(token)) binary += String.fromCharCode(byte);
  return `otterscope.bearer.${btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

export interface LiveOptions {
  /** Opens a new socket (called for the first connection and every reconnect). */
  readonly connect: () => SocketLike;
  readonly clock: Clock;
  /** The subscribe message to send on every (re)connect. */
  readonly subscription: () => string;
  readonly onMessage: (text: string) => void;
  readonly onState: (state: LiveState) => void;
  /**
   * Asked after a close that may be a refusal: one that never opened (a browser reports an
   * HTTP 401/403 to the upgrade as 1006, the same as an unreachable server) or 1008.
   * Resolves true when the credentials are no longer accepted: the feed stops rather than
   * retry a refusal forever. Without it every close is retried.
   */
  readonly refused?: () => Promise<boolean>;
}

export class LiveConnection {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private openedAt: number | null = null;
  /** Bumped by every drop and stop: a refusal check answers only the drop that asked it. */
  private generation = 0;
  private state: LiveState = { status: "stopped", attempt: 0, retryAt: null, down: null, gaps: [] };

  constructor(private readonly options: LiveOptions) {}

  get current(): LiveState {
    return this.state;
  }

  start(): void {
    if (this.state.status !== "stopped") return;
    this.dial();
  }

  /** Close for good (the view went away); no reconnect follows. */
  stop(): void {
    this.generation++;
    this.clearTimer();
    const socket = this.socket;
    const opened = this.openedAt !== null;
    this.socket = null;
    this.openedAt = null;
    if (socket) {
      detach(socket);
      // Closing a socket still in its handshake makes Chromium log "closed before the
      // connection is established" to the console: let it open, then close it.
      if (opened) socket.close(1000, "closed by the page");
      else socket.onopen = () => socket.close(1000, "closed by the page");
    }
    this.set({ status: "stopped", retryAt: null });
  }

  /** Send the current subscription now when connected (it is sent on every connect). */
  resubscribe(): void {
    if (this.state.status === "open") this.socket?.send(this.options.subscription());
  }

  /** Forget the gaps shown so far. */
  dismissGaps(): void {
    this.set({ gaps: [] });
  }

  private dial(): void {
    this.clearTimer();
    this.set({ status: "connecting", retryAt: null });
    let socket: SocketLike;
    try {
      socket = this.options.connect();
    } catch (err) {
      // A URL the browser refuses outright: treated like a refused connection.
      this.dropped(1006, String(err));
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      const now = this.options.clock.now();
      this.openedAt = now;
      const down = this.state.down;
      const gaps = down ? [...this.state.gaps, { from: down.since, to: now, code: down.code, reason: down.reason }] : this.state.gaps;
      this.set({ status: "open", retryAt: null, down: null, gaps });
      socket.send(this.options.subscription());
    };
    socket.onmessage = (event) => {
      if (socket === this.socket && typeof event.data === "string") this.options.onMessage(event.data);
    };
    // Every failure also ends in close; the close event carries the code.
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      this.dropped(event.code, event.reason);
    };
  }

  private dropped(code: number, reason: string): void {
    const now = this.options.clock.now();
    if (this.socket) detach(this.socket);
    this.socket = null;
    const opened = this.openedAt !== null;
    const stable = opened && now - (this.openedAt ?? now) >= STABLE_MS;
    const attempt = stable ? 0 : this.state.attempt;
    this.openedAt = null;
    const delay = backoffDelay(attempt, this.options.clock.random());
    // The gap starts when the connection was lost, not at a later failed attempt.
    const down = this.state.down ?? { since: now, code, reason };
    this.set({ status: "reconnecting", attempt: attempt + 1, retryAt: now + delay, down });
    const generation = ++this.generation;
    const retry = () => {
      if (generation !== this.generation) return;
      const wait = Math.max(0, now + delay - this.options.clock.now());
      this.timer = this.options.clock.setTimeout(() => {
        this.timer = null;
        this.dial();
      }, wait);
    };
    const refused = this.options.refused;
    if (!refused || (opened && code !== POLICY_VIOLATION)) {
      retry();
      return;
    }
    // The retry waits for the answer, so a refused token is not offered once more.
    refused().then(
      (gone) => {
        if (generation !== this.generation) return;
        if (gone) this.stop();
        else retry();
      },
      // No answer either (the server is down): keep trying as for any drop.
      retry,
    );
  }

  private clearTimer(): void {
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private set(patch: Partial<LiveState>): void {
    this.state = { ...this.state, ...patch };
    this.options.onState(this.state);
  }
}

function detach(socket: SocketLike): void {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = null;
}
