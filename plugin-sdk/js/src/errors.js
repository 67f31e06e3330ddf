// Typed plugin errors: each class is one case of the WIT `plugin-error` variant.
//
// jco passes a thrown `{tag, val}` object to the host as the export's `err`; `toWit` turns
// whatever a plugin threw into that shape. An `Error` that is none of these classes becomes
// `internal` with its name, message and stack, so the host shows where it was thrown.

/** Base class of the typed errors; `tag` and `val` are what the host receives. */
export class PluginError extends Error {
  constructor(tag, val, message) {
    super(message);
    this.name = new.target.name;
    this.tag = tag;
    this.val = val;
  }
}

/** Records do not fit: `issues` is `[{index, reasons: [string]}]`, every offending record. */
export class InvalidInput extends PluginError {
  constructor(issues) {
    const list = issues.map(({ index, reasons }) => ({ index: index >>> 0, reasons: reasons.map(String) }));
    super('invalid-input', list, list.map((i) => `record ${i.index}: ${i.reasons.join('; ')}`).join(', '));
    this.issues = list;
  }
}

/** Configuration is missing or malformed. */
export class InvalidConfig extends PluginError {
  constructor(message) {
    super('invalid-config', String(message), String(message));
  }
}

/** A transient failure (a 5xx answer, a refused connection): retrying may succeed. */
export class Retryable extends PluginError {
  constructor(message) {
    super('retryable', String(message), String(message));
  }
}

/**
 * A transient failure whose remote said how long to wait (a 429 or 503 with `Retry-After`): the
 * flow's retry waits at least `delayMs` milliseconds (up to its `max_backoff_ms`). The WIT's
 * `delay-ms` is a u64, which jco carries as a BigInt.
 */
export class RetryAfter extends Retryable {
  constructor(message, delayMs) {
    super(message);
    // The WIT field is a u64: a delay that is not a finite number counts as none, a huge one as
    // the largest (the host caps it again).
    const asked = Number(delayMs);
    const delay = Number.isFinite(asked) ? BigInt(Math.min(Math.max(0, Math.floor(asked)), Number.MAX_SAFE_INTEGER)) : 0n;
    this.tag = 'retry-after';
    this.val = { message: String(message), delayMs: delay };
    this.delayMs = Number(delay);
  }
}

/** A capability the plugin needed was not granted by the operator. */
export class Denied extends PluginError {
  constructor(message) {
    super('denied', String(message), String(message));
  }
}

/** Anything else; retrying will not help. */
export class Internal extends PluginError {
  constructor(message) {
    super('internal', String(message), String(message));
  }
}

const TAGS = new Set(['invalid-input', 'invalid-config', 'retryable', 'retry-after', 'denied', 'internal']);

/** The WIT `plugin-error` (`{tag, val}`) for anything a plugin threw. */
export function toWit(thrown) {
  if (thrown instanceof PluginError) {
    return { tag: thrown.tag, val: thrown.val };
  }
  if (thrown instanceof Error) {
    return { tag: 'internal', val: `${thrown.name}: ${thrown.message}${stackOf(thrown)}` };
  }
  if (thrown !== null && typeof thrown === 'object' && TAGS.has(thrown.tag)) {
    return thrown; // already the WIT shape
  }
  return { tag: 'internal', val: `uncaught ${describe(thrown)}` };
}

/** The stack's frames in the plugin's bundle, without those of the engine's generated glue. */
function stackOf(error) {
  if (typeof error.stack !== 'string') return '';
  const frames = error.stack.split('\n').filter((frame) => frame.trim() && !frame.includes('/sources/initializer.js'));
  return frames.length > 0 ? `\n${frames.join('\n')}` : '';
}

function describe(value) {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
