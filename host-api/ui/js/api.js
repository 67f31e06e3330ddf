// The one way the dashboard talks to the server: the same /v1 API and bearer token as the CLI.
// The token lives in sessionStorage (gone with the tab, never in a URL or a cookie).

const TOKEN_KEY = "plugboard.token";

/** An error the API answered: `status`, its typed `code` and `message`, and the whole `body`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code ? body.code : "http-" + status;
    this.body = body || {};
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let onUnauthorized = () => {};
/** Called when the server answers 401 (token revoked or wrong): the app signs out. */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/**
 * Sends one request. `body` is JSON-encoded unless it is a string, Blob or ArrayBuffer, which go
 * as they are with `contentType`. Answers the parsed JSON (or null for 204); throws ApiError.
 */
export async function request(method, path, body, contentType) {
  const headers = { Authorization: "Bearer " + (token() || "") };
  let payload;
  if (body !== undefined && body !== null) {
    if (typeof body === "string" || body instanceof Blob || body instanceof ArrayBuffer) {
      payload = body;
      headers["Content-Type"] = contentType || "application/json";
    } else {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
  }
  const response = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { message: text };
    }
  }
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

export const get = (path) => request("GET", path);
export const post = (path, body, contentType) => request("POST", path, body, contentType);
export const put = (path, body, contentType) => request("PUT", path, body, contentType);
export const del = (path) => request("DELETE", path);

/** `path` with the defined, non-empty values of `params` as a query string. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** A path segment, escaped. */
export const seg = (value) => encodeURIComponent(String(value));
