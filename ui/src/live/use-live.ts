// The live view's data: one LiveConnection for the life of the view, rows batched into the
// view a few times a second (a busy feed sends hundreds of messages a second; one render
// per message would freeze the tab), pause with a bounded buffer, the traces seen so far.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, apiGet } from "../api";
import { getToken } from "../auth";
import { prependCapped, PauseBuffer } from "./buffer";
import { bearerProtocol, LiveConnection, type LiveState } from "./connection";
import { parseFeedMessage, tallyTraces, type LiveRow, type TraceTally } from "./feed";

export const MAX_ROWS = 500;
export const MAX_PAUSED = 5000;
export const MAX_TRACES = 50;
const FLUSH_MS = 200;

export interface LiveView {
  readonly state: LiveState;
  readonly rows: readonly LiveRow[];
  readonly traces: readonly TraceTally[];
  readonly paused: boolean;
  /** Arrivals while paused, and how many of them will not be shown (over the buffer). */
  readonly waiting: number;
  readonly dropped: number;
  readonly serverError: string | null;
  /** The filter the server last confirmed ("subscribed"), null before the first. */
  readonly subscribed: { readonly signals: readonly string[]; readonly service: string | null } | null;
  setPaused(paused: boolean): void;
  clear(): void;
  dismissGaps(): void;
}

function socketUrl(): string {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/ws`;
}

export function useLive(subscription: string): LiveView {
  const [state, setState] = useState<LiveState>({ status: "connecting", attempt: 0, retryAt: null, down: null, gaps: [] });
  const [rows, setRows] = useState<LiveRow[]>([]);
  const [traces, setTraces] = useState<TraceTally[]>([]);
  const [paused, setPausedState] = useState(false);
  const [waiting, setWaiting] = useState({ received: 0, dropped: 0 });
  const [serverError, setServerError] = useState<string | null>(null);
  const [subscribed, setSubscribed] = useState<LiveView["subscribed"]>(null);
  const sub = useRef(subscription);
  sub.current = subscription;
  const live = useRef<LiveConnection | null>(null);
  const pending = useRef<LiveRow[]>([]);
  const pausedRef = useRef(false);
  const held = useRef(new PauseBuffer<LiveRow>(MAX_PAUSED));

  useEffect(() => {
    const conn = new LiveConnection({
      connect: () => {
        const token = getToken();
        return token ? new WebSocket(socketUrl(), [bearerProtocol(token)]) : new WebSocket(socketUrl());
      },
      clock: {
        now: () => Date.now(),
        setTimeout: (fn, ms) => window.setTimeout(fn, ms),
        clearTimeout: (id) => window.clearTimeout(id as number),
        random: Math.random,
      },
      subscription: () => sub.current,
      onMessage: (text) => {
        const event = parseFeedMessage(text);
        if (event.type === "rows") {
          if (pausedRef.current) held.current.push(event.rows);
          else {
            pending.current.push(...event.rows);
            // Between two flushes only the newest MAX_ROWS can be shown: a burst of
            // thousands is cut here rather than held.
            if (pending.current.length > 2 * MAX_ROWS) pending.current = pending.current.slice(-MAX_ROWS);
          }
        } else if (event.type === "error") setServerError(event.message);
        else if (event.type === "subscribed") {
          setServerError(null);
          setSubscribed({ signals: event.signals, service: event.service });
        }
      },
      onState: setState,
      // A WebSocket refusal cannot say why; the session can. Its 401 (announced by apiGet,
      // so the shell asks to sign in again) means the token is gone; anything else is
      // retried.
      refused: () =>
        apiGet<unknown>("/api/session").then(
          () => false,
          (err: unknown) => err instanceof ApiError && err.status === 401,
        ),
    });
    live.current = conn;
    conn.start();
    const flush = window.setInterval(() => {
      if (pausedRef.current) {
        const buffer = held.current;
        setWaiting((w) => (w.received === buffer.received ? w : { received: buffer.received, dropped: buffer.dropped }));
        return;
      }
      const batch = pending.current;
      if (!batch.length) return;
      pending.current = [];
      const now = Date.now();
      setRows((list) => prependCapped(list, batch, MAX_ROWS));
      setTraces((list) => tallyTraces(list, batch, now, MAX_TRACES));
    }, FLUSH_MS);
    return () => {
      window.clearInterval(flush);
      conn.stop();
      live.current = null;
    };
  }, []);

  useEffect(() => {
    live.current?.resubscribe();
  }, [subscription]);

  return {
    state,
    rows,
    traces,
    paused,
    waiting: waiting.received,
    dropped: waiting.dropped,
    serverError,
    subscribed,
    setPaused(next: boolean) {
      pausedRef.current = next;
      setPausedState(next);
      if (!next) {
        // Released in arrival order ahead of anything that came since the last flush.
        pending.current = [...held.current.take(), ...pending.current];
        setWaiting({ received: 0, dropped: 0 });
      }
    },
    clear() {
      pending.current = [];
      held.current.take();
      setWaiting({ received: 0, dropped: 0 });
      setRows([]);
      setTraces([]);
    },
    dismissGaps() {
      live.current?.dismissGaps();
    },
  };
}
