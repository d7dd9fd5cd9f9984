// The shell: session check and sign-in, the navigation bar, preferences, and the page the
// URL names. Pages receive the session and the parsed route; they own nothing else global.
import { useEffect, useState } from "preact/hooks";
import { ApiError, UNAUTHORIZED_EVENT } from "./api";
import { clearToken } from "./auth";
import { ErrorBox, Loading } from "./components/status";
import { routes } from "./pages";
import { setPrefs, usePrefs } from "./prefs";
import type { Theme } from "./prefs";
import { href, useRoute } from "./router";
import type { Session } from "./session";
import { canRead, loadSession } from "./session";
import { SignIn } from "./pages/signin";

type Boot =
  | { state: "loading" }
  | { state: "signin"; reason?: string }
  | { state: "ready"; session: Session }
  | { state: "failed"; error: unknown };

const NAV: readonly { path: string; label: string; names: readonly string[] }[] = [
  { path: "/traces", label: "Traces", names: ["traces", "trace", "compare"] },
  { path: "/logs", label: "Logs", names: ["logs"] },
  { path: "/live", label: "Live", names: ["live"] },
];

export function App() {
  const [boot, setBoot] = useState<Boot>({ state: "loading" });

  useEffect(() => {
    const controller = new AbortController();
    loadSession(controller.signal)
      .then((session) => {
        if (canRead(session)) {
          setBoot({ state: "ready", session });
          return;
        }
        clearToken(); // a token that cannot read is of no use to this tab
        setBoot({ state: "signin", reason: "This token lacks the read scope. Sign in with a token that has read." });
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) setBoot({ state: "signin" });
        else setBoot({ state: "failed", error });
      });
    const expired = () => {
      clearToken();
      setBoot({ state: "signin", reason: "The server no longer accepts this token. Sign in again." });
    };
    window.addEventListener(UNAUTHORIZED_EVENT, expired);
    return () => {
      controller.abort();
      window.removeEventListener(UNAUTHORIZED_EVENT, expired);
    };
  }, []);

  if (boot.state === "loading") return <Loading what="otterscope" />;
  if (boot.state === "failed") return <ErrorBox error={boot.error} title="otterscope could not be reached" />;
  if (boot.state === "signin")
    return <SignIn reason={boot.reason} onSignedIn={(session) => setBoot({ state: "ready", session })} />;
  return (
    <Shell
      session={boot.session}
      onSignOut={() => {
        clearToken();
        setBoot({ state: "signin" });
      }}
    />
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const prefs = usePrefs();
  const Page = routes[route.name];
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href={href("/traces")}>
          otterscope
        </a>
        <nav aria-label="Main">
          {NAV.map((item) => (
            <a
              key={item.path}
              href={href(item.path)}
              aria-current={item.names.includes(route.name) ? "page" : undefined}
            >
              {item.label}
            </a>
          ))}
        </nav>
        <div class="topbar-right">
          <label class="compact">
            Time
            <select
              value={prefs.timeZone}
              onChange={(e) => setPrefs({ timeZone: (e.target as HTMLSelectElement).value === "utc" ? "utc" : "local" })}
            >
              <option value="local">Local</option>
              <option value="utc">UTC</option>
            </select>
          </label>
          <label class="compact">
            Theme
            <select
              value={prefs.theme}
              onChange={(e) => setPrefs({ theme: (e.target as HTMLSelectElement).value as Theme })}
            >
              <option value="system">System</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
          <span class="muted" title={`scopes: ${session.scopes.join(", ")}`}>
            {session.tenant}
          </span>
          {!session.anonymous && (
            <button type="button" class="link" onClick={onSignOut}>
              Sign out
            </button>
          )}
        </div>
      </header>
      <main class="page">
        <Page route={route} session={session} />
      </main>
    </div>
  );
}
