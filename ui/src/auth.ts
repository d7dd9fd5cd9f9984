// The bearer token lives in this tab's sessionStorage only: never in a URL, never in
// localStorage (which would outlive the tab and leak to every other tab of the origin).
const KEY = "otterscope.token";

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(KEY, token.trim());
}

export function clearToken(): void {
  sessionStorage.removeItem(KEY);
}
