// A transformer: each JSON object record gets a `tag` field with the configured value.

import { transformer, json, config, log, type Record } from '@plugboard/sdk';

export const transform = transformer((records: Record[]): Record[] => {
  const tag = config.get('tag') ?? 'untagged';
  const values = json.parseBatch<unknown>(records);
  log.info(`tagging ${values.length} records`);
  return records.map((record, index) => {
    const value = values[index];
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      (value as { [field: string]: unknown }).tag = tag;
    }
    return json.withValue(record, value);
  });
});
