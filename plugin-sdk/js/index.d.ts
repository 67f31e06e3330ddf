// Types of @plugboard/sdk. The shapes are those jco gives a component for Plugboard's WIT
// (`wit/plugin.wit`): bytes are `Uint8Array`, an absent option is `undefined`.

/** One header of a record. */
export interface Header {
  name: string;
  value: Uint8Array;
}

/** The unit of data: `value` holds JSON by convention. */
export interface Record {
  key?: Uint8Array;
  value: Uint8Array;
  headers: Header[];
}

/** Why one record of a batch was rejected: its index in the input and one reason per rule. */
export interface RecordIssue {
  index: number;
  reasons: string[];
}

/** The WIT `plugin-error` as jco passes it to the host. */
export type WitPluginError =
  | { tag: 'invalid-input'; val: RecordIssue[] }
  | { tag: 'invalid-config'; val: string }
  | { tag: 'retryable'; val: string }
  | { tag: 'retry-after'; val: { message: string; delayMs: bigint } }
  | { tag: 'denied'; val: string }
  | { tag: 'internal'; val: string };

type Awaitable<T> = T | Promise<T>;

// ---- entry points -------------------------------------------------------------------------------

/** Export as `transform`: `export const transform = transformer((records) => ...)`. */
export function transformer(fn: (records: Record[]) => Awaitable<Record[]>): {
  transform(input: Record[]): Awaitable<Record[]>;
};

/** One page of a read: `nextCursor` undefined or null leaves the flow's cursor where it was. */
export interface Page {
  records: Record[];
  nextCursor?: string | null;
}

/** Export as `reader`: `export const reader = source((cursor, maxRecords) => ({records, nextCursor}))`. */
export function source(fn: (cursor: string | undefined, maxRecords: number) => Awaitable<Page>): {
  read(cursor: string | undefined, maxRecords: number): Awaitable<{ records: Record[]; nextCursor?: string }>;
};

/** What the outside system accepted. */
export interface WriteReport {
  accepted: number;
  failed: number;
}

/** Export as `writer`: `export const writer = sink((records) => ({accepted, failed}))`; nothing returned = all accepted. */
export function sink(fn: (records: Record[]) => Awaitable<WriteReport | void>): {
  write(input: Record[]): Awaitable<WriteReport>;
};

// ---- errors -------------------------------------------------------------------------------------

/** Base of the typed errors: `tag` and `val` are what the host receives. */
export class PluginError extends Error {
  readonly tag: WitPluginError['tag'];
  readonly val: WitPluginError['val'];
}
/** The input does not fit: lists every offending record. */
export class InvalidInput extends PluginError {
  constructor(issues: RecordIssue[]);
  readonly issues: RecordIssue[];
}
/** The configuration is missing or malformed. */
export class InvalidConfig extends PluginError {
  constructor(message: string);
}
/** A transient failure (5xx, refused connection): retrying may succeed. */
export class Retryable extends PluginError {
  constructor(message: string);
}
/** A transient failure to retry no sooner than `delayMs` (a 429/503 with `Retry-After`). */
export class RetryAfter extends Retryable {
  constructor(message: string, delayMs: number);
  readonly delayMs: number;
}
/** A capability was not granted. */
export class Denied extends PluginError {
  constructor(message: string);
}
/** Anything else; retrying will not help. */
export class Internal extends PluginError {
  constructor(message: string);
}
/** The WIT error for anything thrown: an `Error` becomes `internal` with name, message and stack. */
export function toWit(thrown: unknown): WitPluginError;

// ---- records ------------------------------------------------------------------------------------

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const json: {
  /** The JSON value of one record; `InvalidInput` for record `index` when it is not JSON. */
  parse<T = any>(record: Record, index?: number): T;
  /** The JSON value of every record; `InvalidInput` lists every record that is not JSON. */
  parseBatch<T = any>(batch: Record[]): T[];
  /** A record holding `value` as JSON. */
  record(value: unknown, options?: { key?: string | Uint8Array; headers?: Array<Header | [string, string | Uint8Array]> }): Record;
  /** `record` with a new JSON value; key and headers kept. */
  withValue(record: Record, value: unknown): Record;
};

/** Text as UTF-8 bytes (bytes pass through). */
export function bytes(data: string | Uint8Array): Uint8Array;
/** UTF-8 bytes as text. */
export function text(data: Uint8Array): string;
export function text(data: Uint8Array | undefined): string | undefined;
/** The first header `name` (case-insensitive) of a record, as text. */
export function headerOf(record: Record, name: string): string | undefined;
/** A record's key as text. */
export function keyOf(record: Record): string | undefined;

// ---- capabilities -------------------------------------------------------------------------------

export const config: {
  /** The value, `undefined` when not set; `Denied` when the manifest does not list the key. */
  get(key: string): string | undefined;
  /** The value; `InvalidConfig` when it is not set. */
  require(key: string): string;
  /** The value as JSON, `fallback` when not set (`InvalidConfig` without one, or when not JSON). */
  json<T = any>(key: string, fallback?: T): T;
};

export const log: {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** A key-value bucket. Errors: `Denied` (not granted), `Internal` (too long, over quota). */
export class Bucket {
  private constructor();
  readonly name: string;
  get(key: string): Uint8Array | undefined;
  getText(key: string): string | undefined;
  getJson<T = any>(key: string): T | undefined;
  set(key: string, value: string | Uint8Array): void;
  setJson(key: string, value: unknown): void;
  delete(key: string): void;
  exists(key: string): boolean;
  keys(): string[];
}

export const kv: {
  /** Opens a bucket the manifest lists and the operator granted; `Denied` naming it otherwise. */
  open(bucket: string): Bucket;
};

/** Response headers, names lower-case. */
export class Headers implements Iterable<[string, string]> {
  private constructor();
  get(name: string): string | null;
  has(name: string): boolean;
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}

/** A complete HTTP answer. */
export class Response {
  private constructor();
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly ok: boolean;
  readonly headers: Headers;
  readonly body: Uint8Array;
  bytes(): Promise<Uint8Array>;
  text(): Promise<string>;
  /** The body as JSON; `Internal` when it is not. */
  json<T = any>(): Promise<T>;
  /** The delay a 429/503's `Retry-After` asks for, in milliseconds, when given in seconds. */
  retryAfterMs(): number | null;
  /** This response if 2xx; else throws `Retryable` (408, 429, 5xx; `RetryAfter` with a delay) or `Internal`. */
  assertOk(): this;
}

export interface RequestInit {
  method?: string;
  headers?: { [name: string]: string } | Array<[string, string]>;
  body?: string | Uint8Array;
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
}

export const http: {
  /**
   * Sends a request (sources and sinks only). Any status resolves. Rejects with `Denied` for a
   * host that is not granted, `Retryable` for a failed connection, `Internal` for a bad URL.
   */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  /** 408, 429 and 5xx. */
  retryableStatus(status: number): boolean;
};
