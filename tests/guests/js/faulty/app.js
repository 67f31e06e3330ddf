// js-faulty: a transformer that fails on purpose, as config `mode` says.
//
// - `raise`: an Error thrown two calls deep (`transform` -> `lookupPrice` -> `priceOf`), uncaught;
// - `bucket`: writes to bucket `audit`, which the manifest requests and the test does not grant;
// - `secret`: reads config key `undeclared`, which the manifest does not list;
// - anything else: the batch unchanged.
//
// The SDK is imported by path: this directory has no node_modules of its own.

import { transformer, config, kv } from '../../../../plugin-sdk/js/index.js';

const PRICES = { apple: 1 };

function priceOf(item) {
  if (!(item in PRICES)) throw new Error(`no price for ${item}`);
  return PRICES[item];
}

function lookupPrice(item) {
  return priceOf(item) * 2;
}

export const transform = transformer((records) => {
  const mode = config.get('mode');
  if (mode === 'raise') {
    lookupPrice('durian');
  } else if (mode === 'bucket') {
    const audit = kv.open('audit');
    audit.set('last', String(records.length));
  } else if (mode === 'secret') {
    const value = config.get('undeclared');
    throw new Error(`reading an undeclared key returned ${JSON.stringify(value)}`);
  }
  return records;
});
