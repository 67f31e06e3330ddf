"""A source: numbered records, `max_records` per page; the cursor is the next number, so a flow
resumes where its last stored execution ended. Replace `fetch` with a call to a real system
(`plugboard_sdk.http`, with its host in the manifest's `outbound_hosts`).
"""

from plugboard_sdk import Internal, Page, config, records, source

# Records in the pretend outside system.
TOTAL = 10


def fetch(start, count, prefix):
    return [records.from_json({"id": f"{prefix}{n}", "n": n}) for n in range(start, min(start + count, TOTAL))]


@source
def read(cursor, max_records):
    if cursor is None:
        start = 0
    elif cursor.isdigit():
        start = int(cursor)
    else:
        raise Internal(f"cursor `{cursor}` is not a record number")
    found = fetch(start, max_records, config.get("prefix", ""))
    # Always the position after the last record read, so later runs read only what is new.
    return Page(found, str(start + len(found)))
