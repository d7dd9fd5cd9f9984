// Every request the UI makes goes through here: the token header, the one error shape
// ({"error": {"code", "message"}}) turned into ApiError, and 401 announced to the shell.
import { getToken } from "./auth";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const UNAUTHORIZED_EVENT = "otterscope:unauthorized";

export type QueryValue = string | number | boolean | null | undefined;
export type Query = Record<string, QueryValue | readonly string[]> | URLSearchParams;

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  if (query instanceof URLSearchParams) {
    query.forEach((value, key) => params.append(key, value));
  } else if (query) {
    for (const [key, value] of Object.entries(query)) {
      if (Array.isArray(value)) {
        for (const item of value) params.append(key, item);
      } else if (value !== null && value !== undefined && value !== "") {
        params.append(key, String(value));
      }
    }
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function headers(extra?: Record<string, string>): Headers {
  const result = new Headers({ Accept: "application/json", ...extra });
  const token = getToken();
  if (token) result.set("Authorization", `Bearer ${token}`);
  return result;
}

async function failure(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not the JSON error shape (a proxy's page, say): the status line is all there is.
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
  return new ApiError(response.status, code, message);
}

export async function request<T>(
  method: string,
  path: string,
  options: { query?: Query; body?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(buildUrl(path, options.query), {
      method,
      headers: headers(options.body === undefined ? undefined : { "Content-Type": "application/json" }),
      body: options.body === undefined ? null : JSON.stringify(options.body),
      signal: options.signal ?? null,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "unreachable", `the server did not answer (${String(err)})`);
  }
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export function apiGet<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  return request<T>("GET", path, { query, signal });
}

export function apiPost<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>("POST", path, { body, signal });
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === "AbortError";
}
