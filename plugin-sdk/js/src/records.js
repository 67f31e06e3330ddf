// Records and their JSON values. A record is `{key, value, headers}` with `key` and `value` as
// bytes (`key` may be `undefined`) and headers `[{name, value: bytes}]`, as jco passes them.

import { InvalidInput } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text as UTF-8 bytes; bytes are returned as they are. */
export function bytes(data) {
  return data instanceof Uint8Array ? data : encoder.encode(String(data));
}

/** UTF-8 bytes as text (`undefined` stays `undefined`). */
export function text(data) {
  return data === undefined || data === null ? undefined : decoder.decode(data);
}

/** JSON for records: parse a batch, build records, keep keys and headers. */
export const json = {
  /** The JSON value of one record; a bad one is `InvalidInput` for record `index`. */
  parse(record, index = 0) {
    try {
      return JSON.parse(decoder.decode(record.value));
    } catch (err) {
      throw new InvalidInput([{ index, reasons: [`value is not valid JSON: ${err.message}`] }]);
    }
  },

  /** The JSON value of every record; `InvalidInput` lists every record that is not JSON. */
  parseBatch(batch) {
    const values = [];
    const issues = [];
    batch.forEach((record, index) => {
      try {
        values.push(JSON.parse(decoder.decode(record.value)));
      } catch (err) {
        issues.push({ index, reasons: [`value is not valid JSON: ${err.message}`] });
      }
    });
    if (issues.length > 0) throw new InvalidInput(issues);
    return values;
  },

  /** A record holding `value` as JSON, with an optional key (text or bytes) and headers. */
  record(value, { key, headers } = {}) {
    return {
      key: key === undefined || key === null ? undefined : bytes(key),
      value: encoder.encode(JSON.stringify(value)),
      headers: (headers ?? []).map(header),
    };
  },

  /** `record` with its value replaced by `value` as JSON: key and headers are kept. */
  withValue(record, value) {
    return { key: record.key, value: encoder.encode(JSON.stringify(value)), headers: record.headers };
  },
};

/** The first header called `name` (case-insensitive) of `record`, as text. */
export function headerOf(record, name) {
  const wanted = name.toLowerCase();
  const found = record.headers.find((h) => h.name.toLowerCase() === wanted);
  return found ? decoder.decode(found.value) : undefined;
}

/** A record's key as text. */
export function keyOf(record) {
  return text(record.key);
}

function header(entry) {
  if (Array.isArray(entry)) return { name: String(entry[0]), value: bytes(entry[1]) };
  return { name: String(entry.name), value: bytes(entry.value) };
}
