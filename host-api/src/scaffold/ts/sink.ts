// A sink: logs every JSON record and reports them accepted. Replace the loop with a delivery to a
// real system (`await http.fetch(url, {method: 'POST', json: value})` from '@plugboard/sdk', with
// its host in the manifest's `outbound_hosts`); throw `Retryable` for failures worth retrying.

import { sink, json, log, type Record, type WriteReport } from '@plugboard/sdk';

export const writer = sink((records: Record[]): WriteReport => {
  const values = json.parseBatch<unknown>(records);
  for (const value of values) {
    log.info(`delivered ${JSON.stringify(value)}`);
  }
  return { accepted: values.length, failed: 0 };
});
