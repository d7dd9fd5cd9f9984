// Sign-in with a token: checked against /api/session before it is kept, so a wrong token or
// one without the read scope is said at once instead of failing later on every view.
import { useState } from "preact/hooks";
import { ApiError } from "../api";
import { clearToken, setToken } from "../auth";
import type { Session } from "../session";
import { canRead, loadSession } from "../session";

export function SignIn({ onSignedIn, reason }: { onSignedIn: (s: Session) => void; reason?: string }) {
  const [token, setValue] = useState("");
  const [error, setError] = useState<string | null>(reason ?? null);
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    if (!token.trim()) {
      setError("Enter a token.");
      return;
    }
    setBusy(true);
    setToken(token);
    try {
      const session = await loadSession();
      if (!canRead(session)) {
        clearToken();
        setError(
          `This token lacks the read scope (it has: ${session.scopes.join(", ") || "none"}). ` +
            "Sign in with a token that has read.",
        );
        return;
      }
      onSignedIn(session);
    } catch (err) {
      clearToken();
      setError(err instanceof ApiError && err.status === 401 ? "Unknown token." : String(err instanceof Error ? err.message : err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">otterscope</h1>
        <p>This server requires a token. It is kept in this tab only and sent as an Authorization header.</p>
        <label>
          Token
          <input
            type="password"
            name="token"
            autocomplete="current-password"
            value={token}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
            autoFocus
          />
        </label>
        {error && (
          <p class="error-box" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
