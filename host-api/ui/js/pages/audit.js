// The audit log (admin only): who uploaded, activated, granted, replayed or revoked what, and when.
// Newest first, filtered on the server (`GET /v1/audit?actor=&action=&target=&since=&until=`), a
// page at a time with its `next_cursor`, so a long log never loads whole.

import * as api from "../api.js";
import { h, replace, section, notice, errorText, field, time, badge } from "../dom.js";

/**
 * Every audit action, as the API spells it (`AuditAction` in /openapi.json). Typed as one entry per
 * value of that enum, so an action the server adds and this list lacks fails the dashboard's type
 * check (tests/all/dashboard_types.rs) instead of missing from the filter.
 * @type {{[K in import("../types.js").AuditAction]: K}}
 */
const EVERY_ACTION = {
  "upload": "upload",
  "activate": "activate",
  "deactivate": "deactivate",
  "delete": "delete",
  "grants": "grants",
  "config": "config",
  "rollback-override": "rollback-override",
  "key-add": "key-add",
  "key-revoke": "key-revoke",
  "token-create": "token-create",
  "token-revoke": "token-revoke",
  "admin-token-replace": "admin-token-replace",
  "flow-create": "flow-create",
  "flow-update": "flow-update",
  "flow-delete": "flow-delete",
  "webhook-secret": "webhook-secret",
  "dlq-replay": "dlq-replay",
  "dlq-delete": "dlq-delete",
  "connection-put": "connection-put",
  "connection-delete": "connection-delete",
};
export const ACTIONS = Object.values(EVERY_ACTION);

const PAGE_SIZE = 50;
const COLUMNS = ["Time", "Actor", "Action", "Target", "Key id", "Detail"];

/** How an action is marked: removals and trust changes stand out. */
function actionKind(action) {
  if (/revoke|delete|override|replace/.test(action)) return "warn";
  if (/key-add|token-create|grants/.test(action)) return "info";
  return "";
}

/** A datetime-local value as unix seconds (local time), or undefined when empty or invalid. */
export function unixSeconds(value, endOfMinute = false) {
  if (!value) return undefined;
  const millis = new Date(value).getTime();
  if (Number.isNaN(millis)) return undefined;
  return Math.floor(millis / 1000) + (endOfMinute ? 59 : 0);
}

function row(entry) {
  return h(
    "tr",
    {},
    h("td", { class: "nowrap" }, h("time", { datetime: new Date(entry.at * 1000).toISOString() }, time(entry.at))),
    h("td", {}, entry.actor),
    h("td", { class: "nowrap" }, badge(entry.action, actionKind(entry.action))),
    h("td", {}, entry.target),
    h("td", { class: "mono" }, entry.key_id || "—"),
    h("td", { class: "wrap" }, entry.detail || ""),
  );
}

export async function render(main, ctx) {
  if (!ctx.admin) {
    replace(main, section("Audit", h("p", { class: "notice error" }, "Only an admin token may read the audit log.")));
    return;
  }
  let left = false;
  ctx.onLeave(() => {
    left = true;
  });

  const note = notice();
  const actor = h("input", { type: "text", id: "audit-actor", name: "actor", autocomplete: "off" });
  const action = h(
    "select",
    { id: "audit-action", name: "action" },
    h("option", { value: "" }, "any"),
    ACTIONS.map((name) => h("option", { value: name }, name)),
  );
  const target = h("input", { type: "text", id: "audit-target", name: "target", autocomplete: "off" });
  const since = h("input", { type: "datetime-local", id: "audit-since", name: "since" });
  const until = h("input", { type: "datetime-local", id: "audit-until", name: "until" });
  const submit = h("button", { type: "submit", class: "primary", id: "audit-filter" }, "Filter");
  const clear = h("button", { type: "button", id: "audit-clear" }, "Clear");
  const form = h(
    "form",
    { id: "audit-form", role: "search", "aria-label": "Filter the audit log" },
    h(
      "div",
      { class: "filters" },
      field("Actor (token name)", actor),
      field("Action", action),
      field("Target contains", target),
      field("Since", since),
      field("Until", until),
    ),
    h("div", { class: "actions-row" }, submit, clear),
  );

  const body = h("tbody", {});
  const auditTable = h(
    "table",
    { id: "audit-table" },
    h("caption", { class: "visually-hidden" }, "Audit log entries, newest first"),
    h("thead", {}, h("tr", {}, COLUMNS.map((title) => h("th", { scope: "col" }, title)))),
    body,
  );
  const more = h("button", { type: "button", id: "audit-more", hidden: true }, "More");
  const status = h("p", { class: "caption", "aria-live": "polite" });

  replace(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Audit log"), h("p", { class: "caption" }, "Append-only; newest first.")),
    section("Filter", form),
    note,
    h("section", { class: "card" }, h("h2", {}, "Entries"), status, h("div", { class: "table-wrap" }, auditTable), h("div", { class: "actions-row" }, more)),
  );

  let filters = {};
  let cursor = null;
  let shown = 0;

  function readFilters() {
    const from = unixSeconds(since.value);
    const to = unixSeconds(until.value, true);
    if (from !== undefined && to !== undefined && from > to) throw new Error("“Since” is after “Until”.");
    return {
      actor: actor.value.trim(),
      action: action.value,
      target: target.value.trim(),
      since: from,
      until: to,
    };
  }

  async function load(append) {
    const query = { ...filters, order: "desc", limit: PAGE_SIZE, cursor: append ? cursor : undefined };
    /** @type {import("../types.js").AuditPage} */
    const answer = await api.get(api.withQuery("/v1/audit", query));
    if (left) return;
    const entries = answer.entries || [];
    if (!append) {
      body.replaceChildren();
      shown = 0;
    }
    for (const entry of entries) body.appendChild(row(entry));
    shown += entries.length;
    if (shown === 0) {
      body.appendChild(h("tr", {}, h("td", { colspan: String(COLUMNS.length), class: "empty" }, "No entries match.")));
    }
    cursor = answer.next_cursor ?? null;
    more.hidden = cursor === null;
    const filtered = Object.values(filters).some((v) => v !== undefined && v !== "");
    status.textContent = `${shown.toLocaleString()} ${shown === 1 ? "entry" : "entries"}${filtered ? " matching the filter" : ""}${cursor === null ? "" : ", more below"}.`;
  }

  async function run(button, append) {
    button.disabled = true;
    try {
      if (!append) filters = readFilters();
      await load(append);
      note.clear();
    } catch (error) {
      if (!left) note.show("error", errorText(error));
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(submit, false);
  });
  clear.addEventListener("click", () => {
    form.reset();
    run(clear, false);
  });
  more.addEventListener("click", () => run(more, true));

  await run(submit, false);
}
