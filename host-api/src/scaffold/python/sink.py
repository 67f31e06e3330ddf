"""A sink: logs every JSON record and reports them accepted. Replace the loop with a delivery to
a real system (`plugboard_sdk.http`, with its host in the manifest's `outbound_hosts`); raise
`Retryable` for failures worth retrying (`http` responses have `raise_for_status()` for that).
"""

from plugboard_sdk import Report, log, records, sink


@sink
def write(batch):
    values = records.parse(batch)
    for value in values:
        log.info("delivered %s", records.dumps(value).decode())
    return Report(accepted=len(values), failed=0)
