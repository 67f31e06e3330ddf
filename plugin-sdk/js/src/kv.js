// State kept between invocations through wasi:keyvalue/store, in buckets the manifest lists under
// `key_value` and the operator grants. Writes commit with the invocation (see the README).

import { open as storeOpen } from 'wasi:keyvalue/store@0.2.0-draft';
import { Denied, Internal, InvalidConfig } from './errors.js';
import { bytes, text } from './records.js';

function converted(err, bucket) {
  switch (err?.payload?.tag) {
    case 'access-denied':
      return new Denied(`key-value bucket \`${bucket}\` is not granted`);
    case 'no-such-store':
      return new InvalidConfig(`no such key-value bucket \`${bucket}\``);
    case 'other':
      return new Internal(`key-value bucket \`${bucket}\`: ${err.payload.val}`);
    default:
      return err;
  }
}

function call(bucket, action) {
  try {
    return action();
  } catch (err) {
    throw converted(err, bucket);
  }
}

/** An open bucket. */
export class Bucket {
  #inner;
  #name;

  constructor(inner, name) {
    this.#inner = inner;
    this.#name = name;
  }

  /** The bucket's name. */
  get name() {
    return this.#name;
  }

  /** The value of `key` as bytes, or `undefined`. */
  get(key) {
    return call(this.#name, () => this.#inner.get(key) ?? undefined);
  }

  /** The value of `key` as text, or `undefined`. */
  getText(key) {
    return text(this.get(key));
  }

  /** The value of `key` parsed as JSON, or `undefined`. */
  getJson(key) {
    const value = this.getText(key);
    return value === undefined ? undefined : JSON.parse(value);
  }

  /** Sets `key` to `value` (bytes or text). */
  set(key, value) {
    call(this.#name, () => this.#inner.set(key, bytes(value)));
  }

  /** Sets `key` to `value` as JSON. */
  setJson(key, value) {
    this.set(key, JSON.stringify(value));
  }

  /** Deletes `key` (nothing happens when it is absent). */
  delete(key) {
    call(this.#name, () => this.#inner.delete(key));
  }

  /** Whether `key` is set. */
  exists(key) {
    return call(this.#name, () => this.#inner.exists(key));
  }

  /** Every key of the bucket. */
  keys() {
    const keys = [];
    let cursor;
    do {
      const page = call(this.#name, () => this.#inner.listKeys(cursor));
      keys.push(...page.keys);
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
    return keys;
  }
}

export const kv = {
  /** Opens `bucket`; `Denied` naming it when it was not granted. */
  open(bucket) {
    return new Bucket(call(bucket, () => storeOpen(bucket)), bucket);
  },
};
