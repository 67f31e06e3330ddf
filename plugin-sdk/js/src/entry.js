// The entry point of each world. A plugin exports the object one of these returns, under the WIT
// interface's name:
//
//   export const transform = transformer((records) => records);                        // transformer
//   export const reader = source((cursor, maxRecords) => ({ records, nextCursor }));  // source
//   export const writer = sink((records) => ({ accepted, failed }));                  // sink
//
// The function may be `async`. Whatever it throws reaches the host as a WIT `plugin-error`.

import { toWit } from './errors.js';

/** A transformer: `fn(records)` returns the output records (or a promise of them). */
export function transformer(fn) {
  return { transform: guard(fn, (records) => Array.from(records ?? [])) };
}

/**
 * A source: `fn(cursor, maxRecords)` returns `{records, nextCursor}`. `cursor` is `undefined` on
 * the first read; a `nextCursor` of `undefined` or `null` leaves the flow's cursor where it was.
 */
export function source(fn) {
  return {
    read: guard(fn, (page) => ({
      records: Array.from(page?.records ?? []),
      nextCursor: page?.nextCursor === undefined || page?.nextCursor === null ? undefined : String(page.nextCursor),
    })),
  };
}

/**
 * A sink: `fn(records)` delivers them and returns `{accepted, failed}`; returning nothing means
 * every record was accepted.
 */
export function sink(fn) {
  return {
    write: guard(fn, (report, records) =>
      report === undefined || report === null
        ? { accepted: records.length, failed: 0 }
        : { accepted: report.accepted >>> 0, failed: report.failed >>> 0 },
    ),
  };
}

function guard(fn, shape) {
  return (...args) => {
    let out;
    try {
      out = fn(...args);
    } catch (thrown) {
      throw toWit(thrown);
    }
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
      return out.then(
        (value) => shape(value, ...args),
        (thrown) => {
          throw toWit(thrown);
        },
      );
    }
    return shape(out, ...args);
  };
}
