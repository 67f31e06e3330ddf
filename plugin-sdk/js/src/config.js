// Granted configuration and secrets through wasi:config/store. A secret is a config key the
// manifest lists under `secret_keys`: it is read the same way.

import { get as storeGet } from 'wasi:config/store@0.2.0-rc.1';
import { Denied, Internal, InvalidConfig } from './errors.js';

export const config = {
  /** The value of `key`, or `undefined` when the operator did not set it. `Denied` when the manifest does not list it. */
  get(key) {
    try {
      return storeGet(key) ?? undefined;
    } catch (err) {
      const payload = err?.payload;
      if (payload?.tag === 'upstream') throw new Denied(payload.val);
      if (payload?.tag === 'io') throw new Internal(`config: ${payload.val}`);
      throw err;
    }
  },

  /** The value of `key`; `InvalidConfig` when it is not set. */
  require(key) {
    const value = config.get(key);
    if (value === undefined) throw new InvalidConfig(`config key \`${key}\` is not set`);
    return value;
  },

  /** The value of `key` parsed as JSON, or `fallback` when it is not set; `InvalidConfig` when it is not JSON. */
  json(key, fallback) {
    const value = config.get(key);
    if (value === undefined) {
      if (fallback === undefined) throw new InvalidConfig(`config key \`${key}\` is not set`);
      return fallback;
    }
    try {
      return JSON.parse(value);
    } catch (err) {
      throw new InvalidConfig(`config key \`${key}\` is not valid JSON: ${err.message}`);
    }
  },
};
