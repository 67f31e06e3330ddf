// @plugboard/sdk: write Plugboard plugins in JavaScript or TypeScript (see README.md).

export { transformer, source, sink } from './src/entry.js';
export { PluginError, InvalidInput, InvalidConfig, Retryable, RetryAfter, Denied, Internal, toWit } from './src/errors.js';
export { json, bytes, text, headerOf, keyOf } from './src/records.js';
export { config } from './src/config.js';
export { log } from './src/log.js';
export { kv, Bucket } from './src/kv.js';
export { http, Headers, Response } from './src/http.js';
