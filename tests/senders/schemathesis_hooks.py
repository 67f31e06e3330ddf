"""Hooks for schemathesis (tests/all/openapi_contract.rs): `POST /v1/plugins` takes a signed
component's raw bytes (`application/wasm`), which schemathesis sends as it sends any bytes."""

import schemathesis

schemathesis.serializer.alias("application/wasm", "application/octet-stream")
