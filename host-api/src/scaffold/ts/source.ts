// A source: numbered records, `maxRecords` per page; the cursor is the next number, so a flow
// resumes where its last stored execution ended. Replace `fetchRecords` with a call to a real
// system (`await http.fetch(url)` from '@plugboard/sdk', with its host in the manifest's
// `outbound_hosts`).

import { source, json, config, Internal, type Page, type Record } from '@plugboard/sdk';

/** Records in the pretend outside system. */
const TOTAL = 10;

function fetchRecords(from: number, count: number, prefix: string): Record[] {
  const records: Record[] = [];
  for (let n = from; n < Math.min(from + count, TOTAL); n += 1) {
    records.push(json.record({ id: `${prefix}${n}`, n }));
  }
  return records;
}

export const reader = source((cursor: string | undefined, maxRecords: number): Page => {
  const from = cursor === undefined ? 0 : Number(cursor);
  if (!Number.isInteger(from) || from < 0) throw new Internal(`cursor \`${cursor}\` is not a record number`);
  const prefix = config.get('prefix') ?? '';
  const records = fetchRecords(from, maxRecords, prefix);
  // Always the position after the last record read, so later runs read only what is new.
  return { records, nextCursor: String(from + records.length) };
});
