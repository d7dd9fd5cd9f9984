import { describe, expect, it } from "vitest";
import { backoffDelay, BASE_DELAY_MS, bearerProtocol, LiveConnection, MAX_DELAY_MS, STABLE_MS, type LiveState, type SocketLike } from "./connection";

class FakeSocket implements SocketLike {
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  sent: string[] = [];
  closed: number | null = null;
  send(data: string) {
    this.sent.push(data);
  }
  close(code?: number) {
    this.closed = code ?? 1005;
  }
  open() {
    this.onopen?.({} as Event);
  }
  message(data: string) {
    this.onmessage?.({ data } as MessageEvent);
  }
  drop(code: number, reason = "") {
    this.onerror?.({} as Event);
    this.onclose?.({ code, reason } as CloseEvent);
  }
}

function harness(refused?: () => Promise<boolean>) {
  let now = 1_000_000;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let nextTimer = 1;
  const sockets: FakeSocket[] = [];
  const messages: string[] = [];
  const states: LiveState[] = [];
  let subscription = '{"type":"subscribe","signals":["traces"]}';
  const conn = new LiveConnection({
    connect: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    clock: {
      now: () => now,
      setTimeout: (fn, ms) => {
        const id = nextTimer++;
        timers.push({ at: now + ms, fn, id });
        return id;
      },
      clearTimeout: (id) => {
        const i = timers.findIndex((t) => t.id === id);
        if (i >= 0) timers.splice(i, 1);
      },
      random: () => 1,
    },
    subscription: () => subscription,
    onMessage: (text) => messages.push(text),
    onState: (s) => states.push(s),
    ...(refused ? { refused } : {}),
  });
  return {
    conn,
    sockets,
    messages,
    states,
    timers,
    setSubscription: (s: string) => (subscription = s),
    advance(ms: number) {
      now += ms;
      for (const t of [...timers].sort((a, b) => a.at - b.at)) {
        if (t.at <= now) {
          timers.splice(timers.indexOf(t), 1);
          t.fn();
        }
      }
    },
    get now() {
      return now;
    },
    last: () => sockets[sockets.length - 1] as FakeSocket,
  };
}

describe("backoff", () => {
  it("doubles from the base up to the ceiling, jittered down to half", () => {
    expect(backoffDelay(0, 1)).toBe(BASE_DELAY_MS);
    expect(backoffDelay(1, 1)).toBe(2 * BASE_DELAY_MS);
    expect(backoffDelay(3, 1)).toBe(8 * BASE_DELAY_MS);
    expect(backoffDelay(40, 1)).toBe(MAX_DELAY_MS);
    expect(backoffDelay(3, 0)).toBe(4 * BASE_DELAY_MS);
    expect(backoffDelay(0, 0.5)).toBe(Math.round(BASE_DELAY_MS * 0.75));
  });
});

describe("bearer subprotocol", () => {
  it("is base64url without padding, UTF-8 first", () => {
    expect(bearerProtocol("s3cret")).toBe("otterscope.bearer.czNjcmV0");
    // "??>" encodes to "Pz8+" in base64: the + and / alphabet must become - and _.
    expect(bearerProtocol("??>")).toBe("otterscope.bearer.Pz8-");
    expect(bearerProtocol("???")).toBe("otterscope.bearer.Pz8_");
    expect(bearerProtocol("é")).toBe("otterscope.bearer.w6k");
  });
});

describe("live connection", () => {
  it("subscribes on open and resubscribes with the new filter", () => {
    const h = harness();
    h.conn.start();
    expect(h.conn.current.status).toBe("connecting");
    h.last().open();
    expect(h.conn.current.status).toBe("open");
    expect(h.last().sent).toEqual(['{"type":"subscribe","signals":["traces"]}']);
    h.setSubscription('{"type":"subscribe","signals":["logs"]}');
    h.conn.resubscribe();
    expect(h.last().sent[1]).toBe('{"type":"subscribe","signals":["logs"]}');
    h.last().message("hello");
    expect(h.messages).toEqual(["hello"]);
  });

  it("reconnects after a 1013 and records the gap it missed", () => {
    const h = harness();
    h.conn.start();
    h.last().open();
    const droppedAt = h.now;
    h.last().drop(1013, "too slow");
    expect(h.conn.current.status).toBe("reconnecting");
    expect(h.conn.current.down).toEqual({ since: droppedAt, code: 1013, reason: "too slow" });
    expect(h.sockets).toHaveLength(1);
    h.advance(BASE_DELAY_MS - 1);
    expect(h.sockets).toHaveLength(1);
    h.advance(1);
    expect(h.sockets).toHaveLength(2);
    h.last().open();
    expect(h.conn.current.status).toBe("open");
    expect(h.conn.current.down).toBeNull();
    expect(h.conn.current.gaps).toEqual([{ from: droppedAt, to: droppedAt + BASE_DELAY_MS, code: 1013, reason: "too slow" }]);
    // The new socket is subscribed as well.
    expect(h.last().sent).toHaveLength(1);
    h.conn.dismissGaps();
    expect(h.conn.current.gaps).toEqual([]);
  });

  it("backs off further while attempts fail, from when the link was lost", () => {
    const h = harness();
    h.conn.start();
    h.last().open();
    const lostAt = h.now;
    h.last().drop(1006);
    h.advance(BASE_DELAY_MS);
    h.last().drop(1006); // refused: never opened
    expect(h.conn.current.retryAt).toBe(h.now + 2 * BASE_DELAY_MS);
    h.advance(2 * BASE_DELAY_MS);
    h.last().drop(1006);
    expect(h.conn.current.retryAt).toBe(h.now + 4 * BASE_DELAY_MS);
    h.advance(4 * BASE_DELAY_MS);
    h.last().open();
    expect(h.conn.current.gaps).toHaveLength(1);
    expect(h.conn.current.gaps[0]?.from).toBe(lostAt);
    expect(h.conn.current.gaps[0]?.code).toBe(1006);
  });

  it("keeps backing off when the server drops it right after each connect, resets once stable", () => {
    const h = harness();
    h.conn.start();
    h.last().open();
    h.last().drop(1013);
    h.advance(BASE_DELAY_MS);
    h.last().open();
    h.last().drop(1013);
    expect(h.conn.current.retryAt).toBe(h.now + 2 * BASE_DELAY_MS);
    h.advance(2 * BASE_DELAY_MS);
    h.last().open();
    h.advance(STABLE_MS);
    h.last().drop(1013);
    expect(h.conn.current.retryAt).toBe(h.now + BASE_DELAY_MS);
  });

  it("stops for good: closes the socket, cancels the retry, ignores late events", () => {
    const h = harness();
    h.conn.start();
    h.last().open();
    const first = h.last();
    first.drop(1001);
    expect(h.timers).toHaveLength(1);
    h.conn.stop();
    expect(h.timers).toHaveLength(0);
    expect(h.conn.current.status).toBe("stopped");
    h.advance(MAX_DELAY_MS);
    expect(h.sockets).toHaveLength(1);

    const g = harness();
    g.conn.start();
    const s = g.last();
    s.open();
    g.conn.stop();
    expect(s.closed).toBe(1000);
    // The browser's close event after our own close must not start a reconnect.
    s.drop(1000);
    expect(g.conn.current.status).toBe("stopped");
    expect(g.timers).toHaveLength(0);
  });

  it("stopped during the handshake, closes the socket once it opens, not before", () => {
    const h = harness();
    h.conn.start();
    const s = h.last();
    h.conn.stop();
    expect(s.closed).toBeNull();
    s.open();
    expect(s.closed).toBe(1000);
    expect(s.sent).toEqual([]);
    expect(h.conn.current.status).toBe("stopped");
    expect(h.timers).toHaveLength(0);
  });

  it("stops instead of retrying when a connection that never opened turns out refused", async () => {
    let asked = 0;
    const h = harness(() => {
      asked++;
      return Promise.resolve(true);
    });
    h.conn.start();
    h.last().drop(1006); // an HTTP 401 to the upgrade: the browser says 1006, never opened
    expect(asked).toBe(1);
    // No retry is scheduled while the answer is awaited.
    expect(h.timers).toHaveLength(0);
    await Promise.resolve();
    expect(h.conn.current.status).toBe("stopped");
    h.advance(MAX_DELAY_MS);
    expect(h.sockets).toHaveLength(1);
    expect(h.timers).toHaveLength(0);
  });

  it("asks after a 1008 even on an opened connection, not after an ordinary drop", async () => {
    let asked = 0;
    const h = harness(() => {
      asked++;
      return Promise.resolve(true);
    });
    h.conn.start();
    h.last().open();
    h.last().drop(1001);
    expect(asked).toBe(0);
    expect(h.timers).toHaveLength(1);
    h.advance(BASE_DELAY_MS);
    h.last().open();
    h.last().drop(1008, "token revoked");
    expect(asked).toBe(1);
    await Promise.resolve();
    expect(h.conn.current.status).toBe("stopped");
  });

  it("keeps the backoff when the credentials are still good or the check fails too", async () => {
    let answer: Promise<boolean> = Promise.resolve(false);
    const h = harness(() => answer);
    h.conn.start();
    const droppedAt = h.now;
    h.last().drop(1006);
    await Promise.resolve();
    expect(h.conn.current.status).toBe("reconnecting");
    // The delay still counts from the drop.
    expect(h.timers.map((t) => t.at)).toEqual([droppedAt + BASE_DELAY_MS]);
    h.advance(BASE_DELAY_MS);
    expect(h.sockets).toHaveLength(2);
    answer = Promise.reject(new Error("unreachable"));
    h.last().drop(1006);
    await answer.catch(() => undefined);
    await Promise.resolve();
    expect(h.conn.current.status).toBe("reconnecting");
    expect(h.timers).toHaveLength(1);
  });

  it("ignores a refusal answer that arrives after the view stopped and started again", async () => {
    let release: (gone: boolean) => void = () => undefined;
    const h = harness(() => new Promise<boolean>((resolve) => (release = resolve)));
    h.conn.start();
    h.last().drop(1006);
    h.conn.stop();
    h.conn.start();
    release(true);
    await Promise.resolve();
    await Promise.resolve();
    expect(h.conn.current.status).toBe("connecting");
  });
});
