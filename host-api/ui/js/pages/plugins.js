// Plugins: the list with an upload form (`#/plugins`), and one plugin's page
// (`#/plugins/NAME`): what it is, who signed it, its versions (activate, roll back, deactivate),
// what it asked for and was granted, its budget, health and usage, and the forms to change its
// grants and config and to invoke it. Every button calls the same API the CLI does; buttons the
// signed-in role may not use are not drawn (and the API refuses them anyway).

import * as api from "../api.js";
import { h, replace, table, section, notice, errorText, field, time, badge, count, ms, bytes, actionButton, tile } from "../dom.js";
import { grantsForm, configForm, invokePanel } from "./plugin-forms.js";

function healthBadge(health) {
  if (!health) return badge("unknown");
  if (health.status === "ready") return badge("ready", "ok");
  if (health.status === "failed") return badge("failed", "error");
  return badge(health.status, "warn");
}

function uploadCard(ctx, reload) {
  const note = notice();
  const result = h("div", { id: "plugin-upload-result", "aria-live": "polite" });
  const file = h("input", { type: "file", id: "plugin-upload-file", accept: ".wasm,application/wasm", required: true });
  const activate = h("input", { type: "checkbox", id: "plugin-upload-activate", checked: ctx.admin, disabled: !ctx.admin });
  const rollback = h("input", { type: "checkbox", id: "plugin-upload-rollback", disabled: !ctx.admin });
  const submit = h("button", { type: "submit", class: "primary", id: "plugin-upload" }, "Upload");
  const form = h(
    "form",
    { id: "plugin-upload-form" },
    field("Signed plugin (.wasm)", file, "A component signed with plugboard sign by a trusted publisher key."),
    h("div", { class: "field check" }, activate, h("label", { for: "plugin-upload-activate" }, "Activate it"), ctx.admin ? null : h("small", {}, "(an admin activates)")),
    ctx.admin ? h("div", { class: "field check" }, rollback, h("label", { for: "plugin-upload-rollback" }, "Allow a version below the highest installed (rollback override, audited)")) : null,
    h("div", { class: "actions-row" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files && file.files[0];
    if (!chosen) return note.show("error", "Choose a signed .wasm file first.");
    submit.disabled = true;
    note.clear();
    result.replaceChildren();
    try {
      const query = { activate: activate.checked ? "true" : undefined, allow_rollback: rollback.checked ? "true" : undefined };
      /** @type {import("../types.js").Installed} */
      const answer = await api.post(api.withQuery("/v1/plugins", query), await chosen.arrayBuffer(), "application/wasm");
      replace(
        result,
        h(
          "p",
          { class: "notice ok" },
          "Installed ",
          ctx.me.role === "publisher" ? `${answer.name} ${answer.version}` : h("a", { href: `#/plugins/${api.seg(answer.name)}` }, `${answer.name} ${answer.version}`),
          ` (${answer.kind}, ${answer.status}, signed by key ${answer.key_id || "none"}).`,
        ),
      );
      form.reset();
      activate.checked = ctx.admin;
      await reload();
    } catch (error) {
      note.show("error", errorText(error));
    } finally {
      submit.disabled = false;
    }
  });
  return section("Upload a plugin", form, result, note);
}

async function renderList(main, ctx) {
  const list = h("div", { id: "plugins-list" }, h("p", { class: "loading" }, "Loading…"));
  const note = notice();
  async function reload() {
    try {
      /** @type {import("../types.js").PluginList} */
      const answer = await api.get("/v1/plugins");
      const columns = [
        { title: "Name", cell: (p) => h("a", { href: `#/plugins/${api.seg(p.name)}` }, p.name) },
        { title: "Kind", cell: (p) => p.kind || "—" },
        { title: "Active", cell: (p) => (p.active_version ? badge(p.active_version, "ok") : badge("inactive", "warn")) },
        { title: "Versions", cell: (p) => p.versions.join(", "), class: "wrap" },
      ];
      replace(list, table(columns, answer.plugins, "No plugins installed yet."));
    } catch (error) {
      note.show("error", errorText(error));
    }
  }
  // A publisher uploads but may not read the list (the API refuses it), an invoker the reverse.
  const publisher = ctx.me.role === "publisher";
  const canUpload = ctx.admin || publisher;
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Plugins")),
    publisher ? null : section("Installed", list, note),
    canUpload ? uploadCard(ctx, publisher ? async () => {} : reload) : null,
  );
  if (!publisher) await reload();
}

/**
 * The versions, newest first, with Activate / Roll back (admin). The server answers them in
 * semantic-version order; one below the highest ever installed needs the audited rollback
 * override, which the server asks for with a `rollback` error — also when the highest was since
 * deleted — and the page then asks the operator.
 */
function versionsTable(plugin, ctx, note, reload) {
  const highest = plugin.versions[plugin.versions.length - 1].version;
  const activateCell = (v) => {
    if (!ctx.admin || v.version === plugin.active_version) return null;
    const rollback = v.version !== highest;
    const question = `Roll ${plugin.name} back to ${v.version}? A version below the highest ever installed needs a rollback override, which is audited.`;
    return actionButton(
      rollback ? "Roll back" : "Activate",
      async () => {
        if (rollback && !window.confirm(question)) return;
        const path = `/v1/plugins/${api.seg(plugin.name)}/versions/${api.seg(v.version)}/activate`;
        const activate = (allow) => api.post(api.withQuery(path, { allow_rollback: allow ? "true" : undefined }));
        try {
          await activate(rollback);
        } catch (error) {
          if (error.code !== "rollback" || rollback || !window.confirm(`${error.message}\n\n${question}`)) throw error;
          await activate(true);
        }
        await reload({ message: `${plugin.name} ${v.version} is active.` });
      },
      note,
      { class: "small", "data-activate": v.version, "aria-label": `${rollback ? "Roll back to" : "Activate"} ${v.version}` },
    );
  };
  const columns = [
    { title: "Version", cell: (v) => (v.version === plugin.active_version ? [v.version, " ", badge("active", "ok")] : v.version) },
    { title: "Signer key id", cell: (v) => (v.key_id ? h("code", {}, v.key_id) : badge("unsigned", "warn")) },
    { title: "Digest", cell: (v) => h("code", { title: v.digest }, String(v.digest).slice(0, 16) + "…") },
    { title: "Uploaded", cell: (v) => time(v.uploaded_at), class: "nowrap" },
    { title: "", cell: activateCell, class: "actions" },
  ];
  const deactivate =
    ctx.admin && plugin.active_version
      ? actionButton(
          "Deactivate",
          async () => {
            if (!window.confirm(`Deactivate ${plugin.name}? In-flight invocations finish; new ones are refused.`)) return;
            await api.post(`/v1/plugins/${api.seg(plugin.name)}/deactivate`);
            await reload({ message: `${plugin.name} is inactive.` });
          },
          note,
          { class: "danger", id: "plugin-deactivate" },
        )
      : null;
  return section("Versions", table(columns, [...plugin.versions].reverse()), deactivate ? h("div", { class: "actions-row" }, deactivate) : null);
}

function list(values) {
  return values && values.length ? values.map((v) => h("code", { class: "chip" }, v)) : h("span", { class: "muted" }, "none");
}

function capabilitiesCard(plugin) {
  const requested = (plugin.manifest && plugin.manifest.capabilities) || {};
  const grants = plugin.grants || {};
  const effective = plugin.effective || {};
  return section(
    "Capabilities",
    h("p", { class: "caption" }, "A plugin gets what its manifest requests and an admin granted, and nothing else."),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Outbound hosts requested"), h("dd", {}, list(requested.outbound_hosts)),
      h("dt", {}, "Outbound hosts granted"), h("dd", {}, list(grants.outbound_hosts)),
      h("dt", {}, "Key-value buckets requested"), h("dd", {}, list(requested.key_value)),
      h("dt", {}, "Key-value buckets granted"), h("dd", {}, list(grants.key_value)),
      h("dt", {}, "Config keys requested"), h("dd", {}, list(requested.config_keys)),
      h("dt", {}, "Config set"), h("dd", {}, list(Object.keys(grants.config || {}))),
      h("dt", {}, "Secrets requested"), h("dd", {}, list(requested.secret_keys)),
      h("dt", {}, "Secrets set (values hidden)"), h("dd", {}, list(grants.secrets)),
      h("dt", {}, "In effect now"), h("dd", {}, effective.outbound_hosts ? list([...effective.outbound_hosts, ...(effective.key_value || []).map((b) => `kv:${b}`)]) : h("span", { class: "muted" }, "not loaded")),
    ),
  );
}

const BUDGET_ROWS = [
  ["fuel", "Fuel", count],
  ["timeout_ms", "Time", (v) => ms(v)],
  ["memory_bytes", "Memory", bytes],
  ["max_input_bytes", "Input", bytes],
  ["max_output_bytes", "Output", bytes],
  ["max_records", "Records", count],
];

function budgetCard(plugin) {
  const effective = plugin.effective && plugin.effective.budget;
  const by = (plugin.effective && plugin.effective.budget_set_by) || {};
  const rows = BUDGET_ROWS.map(([key, label, format]) => ({ key, label, format }));
  const columns = [
    { title: "Limit", cell: (r) => r.label },
    { title: "In effect", cell: (r) => (effective ? r.format(effective[r.key]) : "—"), class: "num" },
    { title: "Set by", cell: (r) => by[r.key === "timeout_ms" ? "timeout" : r.key] || "—" },
    { title: "Manifest asks", cell: (r) => (plugin.manifest && plugin.manifest.budget[r.key] != null ? r.format(plugin.manifest.budget[r.key]) : "—"), class: "num" },
    { title: "Granted", cell: (r) => (plugin.grants.budget && plugin.grants.budget[r.key] != null ? r.format(plugin.grants.budget[r.key]) : "—"), class: "num" },
  ];
  return section("Budget", h("p", { class: "caption" }, "The tightest of the host's caps, the grant and the manifest applies to every invocation."), table(columns, rows));
}

function usageCard(plugin) {
  const usage = plugin.usage || {};
  const latency = usage.latency_ms;
  const codes = Object.entries(usage.errors_by_code || {});
  return section(
    "Usage",
    h(
      "div",
      { class: "grid" },
      tile({ label: "Invocations", value: count(usage.invocations) }),
      tile({ label: "Errors", value: count(usage.errors), kind: usage.errors ? "error" : "ok" }),
      tile({ label: "Fuel", value: count(usage.fuel) }),
      tile({ label: "p50 / p99", value: latency ? `${ms(latency.p50)} / ${ms(latency.p99)}` : "—", sub: "over its last invocations since the start" }),
    ),
    codes.length ? h("p", { class: "caption" }, "Errors by code: ", codes.map(([code, n]) => badge(`${code} ${n}`, "error"))) : null,
  );
}

async function renderPlugin(main, ctx, name) {
  const note = notice();
  note.id = "plugin-note";
  note.tabIndex = -1;
  let left = false;
  ctx.onLeave(() => {
    left = true;
  });
  // Rebuilds the page from the server's answer; `after.message` is confirmed in the page's notice,
  // which takes the focus (or `after.focus`, an element id), as the focused button was rebuilt.
  async function reload(after = {}) {
    /** @type {import("../types.js").PluginDetail} */
    const plugin = await api.get(`/v1/plugins/${api.seg(name)}`);
    if (left) return;
    /** @type {Partial<import("../types.js").Manifest>} */
    const manifest = plugin.manifest || {};
    const health = plugin.health;
    const active = plugin.versions.find((v) => v.version === plugin.active_version);
    const facts = h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Kind"), h("dd", {}, manifest.kind || "—"),
      h("dt", {}, "Active version"), h("dd", {}, plugin.active_version || h("span", { class: "muted" }, "none")),
      h("dt", {}, "Signer key id"), h("dd", {}, active ? (active.key_id ? h("code", {}, active.key_id) : "unsigned") : "—"),
      h("dt", {}, "Health"), h("dd", {}, healthBadge(health), health.status === "failed" ? ` ${health.error}` : "", health.status === "ready" ? ` (${health.compiled})` : ""),
      manifest.description ? [h("dt", {}, "Description"), h("dd", {}, manifest.description)] : null,
      manifest.author ? [h("dt", {}, "Author"), h("dd", {}, manifest.author)] : null,
      manifest.world ? [h("dt", {}, "World"), h("dd", {}, h("code", {}, manifest.world))] : null,
    );
    replace(
      main,
      h("div", { class: "page-head" }, h("h1", {}, plugin.name), h("a", { href: "#/plugins" }, "All plugins")),
      note,
      section("Overview", facts),
      usageCard(plugin),
      versionsTable(plugin, ctx, note, (after) => reload(after).catch((e) => note.show("error", errorText(e)))),
      invokePanel(plugin),
      capabilitiesCard(plugin),
      budgetCard(plugin),
      ctx.admin ? grantsForm(plugin, reload) : null,
      ctx.admin ? configForm(plugin, reload) : null,
    );
    const button = after.focus ? document.getElementById(after.focus) : null;
    if (button) {
      // A form's confirmation goes beside its rebuilt button, where the operator is looking.
      button.after(" ", h("span", { class: "saved", role: "status" }, after.message));
      button.focus();
    } else if (after.message) {
      note.show("ok", after.message);
      note.focus();
    }
  }
  try {
    await reload();
  } catch (error) {
    replace(main, h("div", { class: "page-head" }, h("h1", {}, name), h("a", { href: "#/plugins" }, "All plugins")), section("Not available", h("p", { class: "notice error" }, errorText(error))));
  }
}

export async function render(main, ctx) {
  if (ctx.params.length > 0) return renderPlugin(main, ctx, ctx.params[0]);
  return renderList(main, ctx);
}
