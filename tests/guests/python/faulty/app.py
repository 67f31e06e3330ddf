"""py-faulty: a transformer that fails on purpose, as config `mode` says.

- `raise`: a KeyError two calls deep (`transform` -> `lookup_price` -> `price_of`), left uncaught;
- `bucket`: writes to bucket `audit`, which the manifest requests and the test does not grant;
- `secret`: reads config key `undeclared`, which the manifest does not list;
- anything else: the batch unchanged.
"""

from plugboard_sdk import config, kv, transformer

PRICES = {"apple": 1}


def price_of(item):
    return PRICES[item]


def lookup_price(item):
    return price_of(item) * 2


@transformer
def transform(batch):
    mode = config.get("mode")
    if mode == "raise":
        lookup_price("durian")
    elif mode == "bucket":
        with kv.open("audit") as audit:
            audit.set("last", str(len(batch)))
    elif mode == "secret":
        value = config.get("undeclared")
        raise AssertionError(f"reading an undeclared key returned {value!r}")
    return batch
