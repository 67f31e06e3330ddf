// A fetch-like HTTP client for sources and sinks, over the raw wasi:http imports so that the
// host's answers keep their meaning: a host the operator did not grant is `Denied` naming it, a
// failed connection is `Retryable`. (The engine's global `fetch` reports both as a bare
// `TypeError: NetworkError`.) Requests block until the answer is complete; `fetch` returns a
// promise only to read like the web's `fetch`.
//
// Only the `source` and `sink` worlds import wasi:http: a transformer that calls this fails to build.

import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingBody, OutgoingRequest } from 'wasi:http/types@0.2.12';
import { Denied, Internal, RetryAfter, Retryable } from './errors.js';
import { bytes } from './records.js';

const decoder = new TextDecoder();
const dispose = (resource) => resource?.[Symbol.dispose]?.();

/** Response headers (names in lower case), read like the web's `Headers`. */
export class Headers {
  #entries;

  constructor(entries = []) {
    this.#entries = entries.map(([name, value]) => [name.toLowerCase(), value]);
  }

  /** The values of `name` joined by `, `, or `null`. */
  get(name) {
    const wanted = name.toLowerCase();
    const values = this.#entries.filter(([key]) => key === wanted).map(([, value]) => value);
    return values.length > 0 ? values.join(', ') : null;
  }

  has(name) {
    return this.get(name) !== null;
  }

  entries() {
    return this.#entries[Symbol.iterator]();
  }

  [Symbol.iterator]() {
    return this.entries();
  }
}

/** A complete answer: status, headers and the whole body. */
export class Response {
  constructor(method, url, status, headers, body) {
    this.method = method;
    this.url = url;
    this.status = status;
    this.ok = status >= 200 && status < 300;
    this.headers = headers;
    /** The body as bytes. */
    this.body = body;
  }

  async bytes() {
    return this.body;
  }

  async text() {
    return decoder.decode(this.body);
  }

  /** The body parsed as JSON; `Internal` naming the request when it is not JSON. */
  async json() {
    try {
      return JSON.parse(decoder.decode(this.body));
    } catch (err) {
      throw new Internal(`${this.method} ${shown(this.url)}: the answer is not valid JSON: ${err.message}`);
    }
  }

  /**
   * The delay in milliseconds a 429 or 503 answer's `Retry-After` asks for, when it gives one in
   * seconds, else `null`. (The host also reads HTTP-dates, and makes any retryable error of the
   * invocation wait what the remote asked.)
   */
  retryAfterMs() {
    if (this.status !== 429 && this.status !== 503) return null;
    const value = (this.headers.get('retry-after') ?? '').trim();
    // At most a day is taken from a remote (the host caps the wait lower still).
    return /^[0-9]{1,15}$/.test(value) ? Math.min(Number(value), 86400) * 1000 : null;
  }

  /**
   * This response when its status is 2xx; otherwise throws `Retryable` for 408, 429 and 5xx
   * (`RetryAfter` when the answer says how long to wait) and `Internal` for any other status,
   * naming the request, the status and the start of the body.
   */
  assertOk() {
    if (this.ok) return this;
    const snippet = decoder.decode(this.body.subarray(0, 200)).trim();
    const message = `${this.method} ${shown(this.url)}: HTTP ${this.status}${snippet ? `: ${snippet}` : ''}`;
    if (!retryableStatus(this.status)) throw new Internal(message);
    const delay = this.retryAfterMs();
    throw delay === null ? new Retryable(message) : new RetryAfter(message, delay);
  }
}

/**
 * A URL as error messages show it: without its query and fragment, where API keys and tokens
 * travel (the host also blanks every granted secret out of errors and logs).
 */
function shown(url) {
  return String(url).split(/[?#]/, 1)[0];
}

/** Whether a status is worth retrying: 408, 429 and every 5xx. */
export function retryableStatus(status) {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Sends a request and reads the whole answer, like the web's `fetch(url, init)`: `init` takes
 * `method` (default GET), `headers` (an object or `[name, value]` pairs), `body` (text or bytes)
 * or `json` (any value, sent as JSON with `content-type: application/json`).
 *
 * Any status resolves (see `Response.assertOk`). Rejects with `Denied` when the host refuses the
 * outbound host, `Retryable` when the connection fails, `Internal` for a malformed URL.
 */
export async function fetch(url, init = {}) {
  return send(String(url), init);
}

function send(url, init) {
  const method = String(init.method ?? 'GET').toUpperCase();
  const target = parseUrl(url);
  let body = init.body === undefined || init.body === null ? undefined : bytes(init.body);
  const headers = headerPairs(init.headers);
  if (init.json !== undefined) {
    body = bytes(JSON.stringify(init.json));
    if (!headers.some(([name]) => name.toLowerCase() === 'content-type')) {
      headers.push(['content-type', 'application/json']);
    }
  }
  if (body !== undefined && !headers.some(([name]) => name.toLowerCase() === 'content-length')) {
    headers.push(['content-length', String(body.length)]);
  }
  const what = `${method} ${shown(url)}`;
  let fields;
  try {
    fields = Fields.fromList(headers.map(([name, value]) => [name, bytes(value)]));
  } catch (err) {
    throw new Internal(`${what}: invalid header: ${describe(err)}`);
  }
  const request = new OutgoingRequest(fields);
  const invalid = (part) => new Internal(`${what}: invalid ${part}`);
  attempt(() => request.setMethod(methodOf(method)), () => invalid('method'));
  attempt(() => request.setScheme(target.scheme), () => invalid('scheme'));
  attempt(() => request.setAuthority(target.authority), () => invalid('host'));
  attempt(() => request.setPathWithQuery(target.pathWithQuery), () => invalid('path'));
  const outgoing = request.body();

  let pending;
  try {
    pending = handle(request, undefined);
  } catch (err) {
    throw fromErrorCode(err?.payload, what, target.authority, err);
  }
  // A body the host stops taking (a denied request, a closed connection) is reported after the
  // answer, which says why.
  let sendFailure;
  try {
    if (body !== undefined) writeAll(outgoing.write(), body, what);
    OutgoingBody.finish(outgoing, undefined);
  } catch (err) {
    sendFailure = err?.payload?.tag ? fromErrorCode(err.payload, what, target.authority) : err;
  }

  const ready = pending.subscribe();
  ready.block();
  dispose(ready);
  const answer = pending.get();
  dispose(pending);
  if (answer?.tag !== 'ok') throw sendFailure ?? new Retryable(`${what}: no answer`);
  if (answer.val.tag !== 'ok') throw fromErrorCode(answer.val.val, what, target.authority);
  if (sendFailure !== undefined) throw sendFailure;
  const response = answer.val.val;
  const status = response.status();
  const responseHeaders = response.headers();
  const entries = responseHeaders.entries().map(([name, value]) => [name, decoder.decode(value)]);
  dispose(responseHeaders);
  const incoming = response.consume();
  const content = readAll(incoming.stream(), what, target.authority);
  dispose(incoming);
  dispose(response);
  return new Response(method, url, status, new Headers(entries), content);
}

function writeAll(stream, data, what) {
  const ready = stream.subscribe();
  try {
    let offset = 0;
    while (offset < data.length) {
      const permitted = Number(stream.checkWrite());
      if (permitted === 0) {
        ready.block();
        continue;
      }
      const end = Math.min(data.length, offset + permitted);
      stream.write(data.subarray(offset, end));
      offset = end;
    }
    try {
      stream.blockingFlush();
    } catch (err) {
      // With a content-length the host may close the stream once it has every byte.
      if (err?.payload?.tag !== 'closed') throw err;
    }
  } catch (err) {
    throw new Retryable(`${what}: sending the body failed: ${describe(err)}`);
  } finally {
    dispose(ready);
    dispose(stream);
  }
}

function readAll(stream, what) {
  const chunks = [];
  let size = 0;
  try {
    for (;;) {
      let chunk;
      try {
        chunk = stream.blockingRead(65536n);
      } catch (err) {
        if (err?.payload?.tag === 'closed') break;
        throw new Retryable(`${what}: reading the answer failed: ${describe(err)}`);
      }
      chunks.push(chunk);
      size += chunk.length;
    }
  } finally {
    dispose(stream);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

function fromErrorCode(code, what, authority, original) {
  if (!code || typeof code.tag !== 'string') {
    return original ?? new Retryable(`${what}: failed`);
  }
  if (code.tag === 'HTTP-request-denied') {
    return new Denied(`outbound host \`${authority}\` is not granted (${what})`);
  }
  if (code.tag === 'HTTP-request-URI-invalid') {
    return new Internal(`${what}: invalid URL`);
  }
  const detail = code.val === undefined ? '' : ` ${JSON.stringify(code.val)}`;
  return new Retryable(`${what}: ${code.tag}${detail}`);
}

function attempt(action, failure) {
  try {
    action();
  } catch {
    throw failure();
  }
}

function parseUrl(url) {
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(url);
  if (!match) throw new Internal(`\`${shown(url)}\` is not an absolute URL`);
  const scheme = match[1].toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw new Internal(`unsupported URL scheme \`${scheme}\` in \`${shown(url)}\``);
  if (!match[2]) throw new Internal(`\`${shown(url)}\` has no host`);
  const path = match[3] || '/';
  return {
    scheme: { tag: scheme === 'http' ? 'HTTP' : 'HTTPS' },
    authority: match[2],
    pathWithQuery: path.startsWith('/') ? path : `/${path}`,
  };
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

function methodOf(method) {
  return METHODS.has(method) ? { tag: method.toLowerCase() } : { tag: 'other', val: method };
}

function headerPairs(headers) {
  if (!headers) return [];
  const entries = Array.isArray(headers) || typeof headers[Symbol.iterator] === 'function' ? [...headers] : Object.entries(headers);
  return entries.map(([name, value]) => [String(name), String(value)]);
}

function describe(err) {
  if (err?.payload?.tag === 'last-operation-failed') {
    try {
      return err.payload.val.toDebugString();
    } catch {
      return 'last operation failed';
    }
  }
  return err?.payload ? JSON.stringify(err.payload) : String(err?.message ?? err);
}

export const http = { fetch, retryableStatus };
