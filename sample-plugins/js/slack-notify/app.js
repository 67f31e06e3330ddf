// A sink that posts one message per JSON record to a Slack-style incoming webhook:
// `{"text": "<template rendered with the record>"}`. The template comes from config, e.g.
// `Order {id} from {customer.name}: {total}`; the webhook URL is a secret.
//
// A record the template cannot be rendered for (a placeholder names a missing field) is not
// posted and counts as failed. A 5xx or 429 answer is `Retryable`: the whole batch is retried,
// so records before it may be posted twice. Any other non-2xx answer is `Internal`, naming the
// status.

import { sink, json, config, http, log } from '@plugboard/sdk';

const PLACEHOLDER = /\{([^{}]+)\}/g;

/** The value at a dotted path such as `customer.name`, or `undefined`. */
function lookup(value, path) {
  return path.split('.').reduce((node, part) => (node === null || node === undefined ? undefined : node[part]), value);
}

/** `template` with every `{path}` replaced, or the paths the record lacks. */
function render(template, value) {
  const missing = [];
  const text = template.replace(PLACEHOLDER, (_, path) => {
    const found = lookup(value, path.trim());
    if (found === undefined || found === null) {
      missing.push(path.trim());
      return '';
    }
    return typeof found === 'object' ? JSON.stringify(found) : String(found);
  });
  return { text, missing };
}

export const writer = sink(async (records) => {
  const template = config.require('template');
  const webhook = config.require('webhook_url');
  const values = json.parseBatch(records);
  let accepted = 0;
  let failed = 0;
  for (const [index, value] of values.entries()) {
    const { text, missing } = render(template, value);
    if (missing.length > 0) {
      log.warn(`record ${index}: no ${missing.map((path) => `\`${path}\``).join(', ')} for the template; not posted`);
      failed += 1;
      continue;
    }
    const answer = await http.fetch(webhook, { method: 'POST', json: { text } });
    answer.assertOk();
    accepted += 1;
  }
  log.info(`posted ${accepted} messages, ${failed} failed`);
  return { accepted, failed };
});
