// The forms of a plugin's page: grants (outbound hosts, key-value buckets, budget), config (values
// and write-only secrets) and the invoke panel. Each sends one API request and shows the API's
// own typed error in place, so what the dashboard refuses is exactly what the CLI is refused.

import * as api from "../api.js";
import { h, replace, section, notice, errorText, field, jsonBlock, count, ms, bytes } from "../dom.js";

const BUDGET_FIELDS = [
  ["fuel", "Fuel"],
  ["timeout_ms", "Time (ms)"],
  ["memory_bytes", "Memory (bytes)"],
  ["max_input_bytes", "Input (bytes)"],
  ["max_output_bytes", "Output (bytes)"],
  ["max_records", "Records"],
];

/** The non-empty lines (or comma-separated items) of a text field. */
function items(text) {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Wires `form` to `send()`: the button is disabled meanwhile, the outcome goes to `note`. */
function submitting(form, note, send) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    note.clear();
    try {
      await send();
    } catch (error) {
      note.show("error", errorText(error));
    } finally {
      button.disabled = false;
    }
  });
}

/** `#grants-form` (admin): replaces the plugin's outbound hosts, buckets and budget grant. */
export function grantsForm(plugin, reload) {
  const grants = plugin.grants || {};
  const note = notice();
  const hosts = h("textarea", { id: "grant-hosts", rows: "3", class: "mono", spellcheck: "false" }, (grants.outbound_hosts || []).join("\n"));
  const buckets = h("input", { type: "text", id: "grant-buckets", class: "mono", value: (grants.key_value || []).join(", "), autocomplete: "off" });
  const allowPrivate = h("input", { type: "checkbox", id: "grant-allow-private", checked: Boolean(grants.allow_private) });
  const budget = {};
  const budgetFields = BUDGET_FIELDS.map(([key, label]) => {
    const value = grants.budget && grants.budget[key] != null ? String(grants.budget[key]) : "";
    budget[key] = h("input", { type: "number", min: "0", step: "1", id: `grant-${key}`, value, inputmode: "numeric" });
    return field(label, budget[key]);
  });
  const requested = (plugin.manifest && plugin.manifest.capabilities) || {};
  const form = h(
    "form",
    { id: "grants-form" },
    field("Outbound hosts (one per line)", hosts, requested.outbound_hosts && requested.outbound_hosts.length ? `Requested: ${requested.outbound_hosts.join(", ")}` : "The manifest requests none."),
    h("div", { class: "field check" }, allowPrivate, h("label", { for: "grant-allow-private" }, "Granted host names may resolve to private addresses (off: refused; IP addresses reach what they name; link-local never)")),
    field("Key-value buckets (comma-separated)", buckets, requested.key_value && requested.key_value.length ? `Requested: ${requested.key_value.join(", ")}` : "The manifest requests none."),
    h("h3", {}, "Budget grant"),
    h("p", { class: "caption" }, "Empty fields leave the manifest's request and the host's caps to decide."),
    h("div", { class: "form-row" }, budgetFields),
    h("div", { class: "actions-row" }, h("button", { type: "submit", class: "primary", id: "grants-save" }, "Save grants")),
    note,
  );
  submitting(form, note, async () => {
    const limits = {};
    for (const [key] of BUDGET_FIELDS) {
      if (budget[key].value !== "") limits[key] = Number(budget[key].value);
    }
    // Connections are bound on the Connections page and the CLI; saving here keeps them.
    await api.put(`/v1/plugins/${api.seg(plugin.name)}/grants`, {
      outbound_hosts: items(hosts.value),
      allow_private: allowPrivate.checked,
      key_value: items(buckets.value),
      connections: grants.connections || {},
      budget: limits,
    });
    await reload({ message: "Grants saved.", focus: "grants-save" });
  });
  return section("Grants", h("p", { class: "caption" }, "Saving replaces the whole grant; a loaded plugin picks it up at once."), form);
}

/**
 * `#config-form` (admin): values as a JSON object, and secrets as password fields. Secrets are
 * write-only: saving replaces the config and every secret (as `plugboard config set` does), so
 * each needed secret is entered again; the form never shows a stored value.
 */
export function configForm(plugin, reload) {
  const grants = plugin.grants || {};
  const note = notice();
  const values = h("textarea", { id: "config-values", rows: "5", class: "code short", spellcheck: "false" }, JSON.stringify(grants.config || {}, null, 2));
  const error = h("p", { class: "error-at", id: "config-error" });
  const requested = (plugin.manifest && plugin.manifest.capabilities && plugin.manifest.capabilities.secret_keys) || [];
  const names = [...new Set([...requested, ...(grants.secrets || [])])];
  const secrets = {};
  const secretFields = names.map((name) => {
    const set = (grants.secrets || []).includes(name);
    secrets[name] = h("input", { type: "password", autocomplete: "new-password", id: `secret-${name}`, placeholder: set ? "set (enter it again to keep it)" : "not set" });
    return field(name, secrets[name]);
  });
  const form = h(
    "form",
    { id: "config-form" },
    field("Values (a JSON object)", values),
    error,
    names.length ? h("h3", {}, "Secrets (write-only)") : null,
    secretFields,
    h("div", { class: "actions-row" }, h("button", { type: "submit", class: "primary", id: "config-save" }, "Save config")),
    note,
  );
  submitting(form, note, async () => {
    let parsed;
    try {
      parsed = JSON.parse(values.value || "{}");
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("the values must be a JSON object");
      values.removeAttribute("aria-invalid");
      error.textContent = "";
    } catch (reason) {
      values.setAttribute("aria-invalid", "true");
      error.textContent = reason.message;
      values.focus();
      return;
    }
    const written = {};
    for (const [name, input] of Object.entries(secrets)) {
      if (input.value !== "") written[name] = input.value;
    }
    const dropped = (grants.secrets || []).filter((name) => !(name in written));
    if (dropped.length && !window.confirm(`Saving removes the secrets you did not enter again: ${dropped.join(", ")}. Save anyway?`)) return;
    await api.put(`/v1/plugins/${api.seg(plugin.name)}/config`, { values: parsed, secrets: written });
    await reload({ message: "Config saved.", focus: "config-save" });
  });
  return section("Config", h("p", { class: "caption" }, "Saving replaces the config and every secret: secrets cannot be read back, so nothing is merged."), form);
}

function defaultInput(kind) {
  if (kind === "source") return { max_records: 10 };
  return { records: [{}] };
}

function usageLine(usage) {
  if (!usage) return null;
  return h(
    "p",
    { class: "caption" },
    `fuel ${count(usage.fuel)} · time ${ms(usage.wall_time_ms)} · peak memory ${bytes(usage.peak_memory_bytes)}`,
  );
}

function logsBlock(logs) {
  if (!logs || logs.length === 0) return h("p", { class: "muted" }, "No log lines.");
  return h("pre", { class: "log" }, logs.map((entry) => `${entry.level} ${entry.context ? entry.context + ": " : ""}${entry.message}`).join("\n"));
}

/** The invoke panel (any role): a JSON request body, and the output, usage and logs. */
export function invokePanel(plugin) {
  const kind = plugin.manifest && plugin.manifest.kind;
  const input = h("textarea", { id: "invoke-input", rows: "6", class: "code short", spellcheck: "false" }, JSON.stringify(defaultInput(kind), null, 2));
  const output = h("div", { id: "invoke-output", "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "primary", id: "invoke", disabled: !plugin.active_version }, "Invoke");
  const form = h(
    "form",
    { id: "invoke-form" },
    field(
      "Request (JSON)",
      input,
      kind === "source" ? "{\"cursor\": …, \"max_records\": N}: reads one page from the cursor." : "{\"records\": [...]}: each value is one record.",
    ),
    h("div", { class: "actions-row" }, button, plugin.active_version ? null : h("span", { class: "muted" }, "No active version to invoke.")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse(input.value);
      input.removeAttribute("aria-invalid");
    } catch (reason) {
      input.setAttribute("aria-invalid", "true");
      replace(output, h("p", { class: "error-at" }, `Not JSON: ${reason.message}`));
      return;
    }
    button.disabled = true;
    replace(output, h("p", { class: "loading" }, "Running…"));
    try {
      /** @type {import("../types.js").Invoked} */
      const answer = await api.post(`/v1/plugins/${api.seg(plugin.name)}/invoke`, body);
      const { usage, logs, ...result } = answer;
      replace(output, h("h3", {}, "Output"), jsonBlock(result), usageLine(usage), h("h3", {}, "Logs"), logsBlock(logs));
    } catch (error) {
      const failed = error.body || {};
      replace(
        output,
        h("p", { class: "notice error" }, errorText(error)),
        failed.plugin_error ? h("pre", { class: "log" }, failed.plugin_error) : null,
        usageLine(failed.usage),
        failed.logs ? [h("h3", {}, "Logs"), logsBlock(failed.logs)] : null,
      );
    } finally {
      button.disabled = !plugin.active_version;
    }
  });
  return section("Invoke", form, output);
}
