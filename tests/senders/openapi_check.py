"""Checks Plugboard's /openapi.json with tools Plugboard did not write.

Input (stdin): {"document": <the served /openapi.json>, "answers": [<error bodies the server gave>]}.
The document must pass openapi-spec-validator (OpenAPI 3.1), and every answer must validate
against the document's own `#/components/schemas/Error` with jsonschema's draft 2020-12
validator (OpenAPI 3.1's schema dialect). Output (stdout): {"problems": [...]}, empty when all
holds.
"""

import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

given = json.load(sys.stdin)
document = given["document"]
problems = []
try:
    validate(document)
except Exception as err:  # the validator's own error types; any of them is a finding
    problems.append(f"document: {err}")
# The document is the schema's root, so `#/components/...` resolves inside it; its other keys
# (`openapi`, `paths`, …) are not schema keywords and are ignored.
error_schema = dict(document, **{"$ref": "#/components/schemas/Error"})
validator = Draft202012Validator(error_schema)
for answer in given["answers"]:
    for err in validator.iter_errors(answer):
        problems.append(f"answer {json.dumps(answer)}: {err.message}")
json.dump({"problems": problems}, sys.stdout)
