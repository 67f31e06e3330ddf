"""Drives a live Plugboard server with a client GENERATED from its own /openapi.json.

The client is made by `openapi-python-client generate --meta none` (a plain package directory, not
installed); this script uses only that package's functions and models, never hand-written HTTP.

Input (stdin), a JSON object:
  base        the server's base URL, e.g. "http://127.0.0.1:8686"
  token       an admin API token
  client_dir  the directory holding the generated package (it goes on sys.path)
  plugin      path to a signed transformer plugin (.wasm) whose version is not yet installed
Optional:
  package        the generated package's directory name in client_dir (default "plugboard_client")
  public_key     path to the signer's public key file (`plugboard keygen`'s KEY.pub): trusted first
                 with POST /v1/keys; without it the signer must already be trusted
  key_name       the name to trust it under (default "generated-client")
  config         config values to set on the plugin first (PUT /v1/plugins/{name}/config), e.g.
                 {"mapping": {"id": "$.orderId"}} for a json-mapper build under a new name
  flow           the flow's name (default "gen-client")
  records        input records (default one order record the demo json-mapper config maps)
  expect_records the records the plugin must answer for `records` (checked by invoke and not
                 otherwise; default: not checked beyond their count)

Scenario: trust key -> upload -> activate -> (config) -> invoke -> create flow -> run -> read execution.
Output (stdout): {"steps": [{"step", "status", "summary"}...], "execution": <Execution.to_dict()>}.
Exits 1 with a message on stderr at the first status not expected or answer not parsed.
"""

import importlib
import json
import sys

given = json.load(sys.stdin)
sys.path.insert(0, given["client_dir"])
package = given.get("package", "plugboard_client")


def load(module):
    return importlib.import_module(f"{package}.{module}")


def api(name):
    return load(f"api.default.{name}")


AuthenticatedClient = load("client").AuthenticatedClient
File = load("types").File
models = load("models")

steps = []


def fail(message):
    print(json.dumps({"steps": steps}), file=sys.stderr)
    print(f"generated-client scenario: {message}", file=sys.stderr)
    sys.exit(1)


def call(step, fn, expected, model, summarize, **kwargs):
    """Calls a generated `sync_detailed`, checks its status and parsed type, records the step."""
    try:
        response = fn.sync_detailed(client=client, **kwargs)
    except Exception as err:  # the client's own errors (UnexpectedStatus, parse errors, transport)
        fail(f"{step}: the generated client raised {type(err).__name__}: {err}")
    status = int(response.status_code)
    parsed = response.parsed
    if status not in expected:
        detail = parsed.to_dict() if hasattr(parsed, "to_dict") else response.content[:500]
        fail(f"{step}: status {status}, expected {sorted(expected)}: {detail}")
    if not isinstance(parsed, model):
        fail(f"{step}: answer parsed as {type(parsed).__name__}, expected {model}")
    steps.append({"step": step, "status": status, "summary": summarize(parsed)})
    return parsed


records = given.get("records", [{"orderId": "A1", "customerId": 7, "orderTotal": 1250}])
flow_name = given.get("flow", "gen-client")

with AuthenticatedClient(
    base_url=given["base"],
    token=given["token"],
    raise_on_unexpected_status=True,
    timeout=120.0,
) as client:
    # (0) trust the signer's key
    if given.get("public_key"):
        with open(given["public_key"], "rb") as f:
            public_key = f.read().hex()
        key = call(
            "trust-key",
            api("post_v1_keys"),
            {201},
            models.Key,
            lambda k: f"key {k.key_id} ({k.name})",
            body=models.AddKey(name=given.get("key_name", "generated-client"), public_key=public_key),
        )

    # (a) upload the signed plugin
    with open(given["plugin"], "rb") as wasm:
        installed = call(
            "upload",
            api("post_v1_plugins"),
            {201},
            models.Installed,
            lambda i: f"{i.name} {i.version} ({i.kind}, {i.status}, key {i.key_id})",
            body=File(payload=wasm, file_name="plugin.wasm", mime_type="application/octet-stream"),
        )
    name, version = installed.name, installed.version
    if installed.key_id is None:
        fail(f"upload: {name} {version} was installed unsigned")

    # (b) activate it
    active = call(
        "activate",
        api("post_v1_plugins_name_versions_version_activate"),
        {200},
        models.ActiveVersion,
        lambda a: f"{a.name} active {a.active_version}",
        name=name,
        version=version,
    )
    if active.active_version != version:
        fail(f"activate: active version {active.active_version}, expected {version}")

    # its config values, when given
    if "config" in given:
        call(
            "config",
            api("put_v1_plugins_name_config"),
            {200},
            models.ConfigView,
            lambda c: f"config keys {sorted(c.values.to_dict())}",
            name=name,
            body=models.ConfigRequest(values=models.ConfigRequestValues.from_dict(given["config"])),
        )

    # (c) invoke it with records: a transformer answers its records, with usage and logs
    invoked = call(
        "invoke",
        api("post_v1_plugins_name_invoke"),
        {200},
        models.Invoked,
        lambda i: f"{len(i.records)} records out, {i.usage.fuel} fuel",
        name=name,
        body=models.InvokeRequest(records=records),
    )
    if not isinstance(invoked.usage, models.InvocationUsage) or not isinstance(invoked.logs, list):
        fail(f"invoke: no typed usage and logs in {invoked.to_dict()}")
    if len(invoked.records) != len(records):
        fail(f"invoke: {len(invoked.records)} records out for {len(records)} in: {invoked.records}")
    if "expect_records" in given and invoked.records != given["expect_records"]:
        fail(f"invoke: records {invoked.records}, expected {given['expect_records']}")

    # (d) create a flow with one transform step on it (no sink: records end at the last step)
    definition = models.FlowDefinition(
        name=flow_name,
        steps=[models.StepType0(id="map", plugin=name, type_="transform")],
    )
    created = call(
        "create-flow",
        api("post_v1_flows"),
        {201},
        models.FlowDefinition,
        lambda f: f"flow {f.name}, {len(f.steps)} step(s)",
        body=definition,
    )
    if created.name != flow_name or [s.plugin for s in created.steps] != [name]:
        fail(f"create-flow: answered {created.to_dict()}")

    # (e) run it with records
    ran = call(
        "run",
        api("post_v1_flows_name_run"),
        {200},
        models.Execution,
        lambda e: f"execution {e.id}: {e.status}",
        name=flow_name,
        body=models.RunRequest(records=records),
    )

    # (f) read the execution back and check it
    execution = call(
        "execution",
        api("get_v1_executions_id"),
        {200},
        models.Execution,
        lambda e: f"execution {e.id}: {e.status}, {e.records_in} in, {len(e.steps)} step report(s)",
        id=ran.id,
    )
    problems = []
    if execution.id != ran.id or execution.flow != flow_name:
        problems.append(f"execution {execution.id} of {execution.flow}, expected {ran.id} of {flow_name}")
    if execution.status != models.ExecutionStatus.SUCCEEDED:
        problems.append(f"status {execution.status}")
    if execution.trigger != models.TriggerKind.MANUAL:
        problems.append(f"trigger {execution.trigger}")
    if execution.records_in != len(records):
        problems.append(f"records_in {execution.records_in}, expected {len(records)}")
    if execution.plugin_versions.additional_properties.get(name) != version:
        problems.append(f"plugin_versions {execution.plugin_versions.to_dict()}, expected {name}={version}")
    reports = [(s.step, s.records_in, s.records_out) for s in execution.steps]
    if reports != [("map", len(records), len(records))]:
        problems.append(f"step reports {reports}, expected [('map', {len(records)}, {len(records)})]")
    if execution.dead_letters:
        problems.append(f"{len(execution.dead_letters)} dead letters")
    if problems:
        fail("execution: " + "; ".join(problems))

json.dump({"steps": steps, "execution": execution.to_dict()}, sys.stdout)
