// Connections (admin only): credentials the host holds and adds to plugins' requests to their
// hosts. Secrets go in once and are never shown: the list says only whether one is stored, and
// which plugins' grants use each connection. "Test" fetches a token (OAuth) and calls the
// connection's probe URL, as a plugin's request would.

import * as api from "../api.js";
import { h, replace, table, section, notice, errorText, field, badge, actionButton } from "../dom.js";

const EXAMPLE = JSON.stringify(
  {
    kind: "oauth2-client-credentials",
    hosts: ["api.crm.example"],
    token_url: "https://auth.crm.example/oauth/token",
    client_id: "plugboard",
    secret: "",
    rate_limit: { per_second: 10, burst: 20, concurrent: 4 },
    probe_url: "https://api.crm.example/v1/me",
  },
  null,
  2,
);

function listSection(reload) {
  const note = notice();
  const list = h("div", { id: "connections-list" }, h("p", { class: "loading" }, "Loading…"));
  function show(connections) {
    const columns = [
      { title: "Name", cell: (c) => h("code", {}, c.name) },
      { title: "Kind", cell: (c) => c.kind },
      { title: "Hosts", cell: (c) => (c.hosts || []).join(", ") },
      { title: "Secret", cell: (c) => (c.has_secret ? badge("stored", "ok") : badge("missing", "error")) },
      { title: "Used by", cell: (c) => ((c.used_by || []).length ? c.used_by.join(", ") : "-") },
      {
        title: "",
        class: "actions",
        cell: (c) =>
          h(
            "span",
            {},
            actionButton(
              "Test",
              async () => {
                /** @type {import("../types.js").ConnectionProbe} */
                const answer = await api.post(`/v1/connections/${api.seg(c.name)}/test`);
                const detail = answer.error || (answer.status ? `status ${answer.status}` : "token fetched");
                note.show(answer.ok ? "ok" : "error", `${c.name}: ${answer.ok ? "ok" : "failed"} (${detail})`);
              },
              note,
              { class: "small", "data-test-connection": c.name },
            ),
            " ",
            actionButton(
              "Delete",
              async () => {
                if (!window.confirm(`Delete connection ${c.name}? Plugins using it send their requests without it.`)) return;
                await api.del(`/v1/connections/${api.seg(c.name)}`);
                note.show("ok", `Deleted ${c.name}.`);
                await reload();
              },
              note,
              { class: "danger small", "aria-label": `Delete connection ${c.name}` },
            ),
          ),
      },
    ];
    replace(list, table(columns, connections, "No connections yet."));
  }
  return { element: section("Connections", list, note), show, note };
}

function formSection(reload) {
  const note = notice();
  const name = h("input", { type: "text", id: "connection-name", required: true, maxlength: "64", autocomplete: "off" });
  const definition = h("textarea", { id: "connection-definition", rows: "12", spellcheck: "false", class: "mono" });
  definition.value = EXAMPLE;
  const form = h(
    "form",
    { id: "connection-form" },
    field("Name", name),
    field("Definition (JSON; without \"secret\" a replacement keeps the stored one)", definition),
    h("button", { type: "submit", class: "primary" }, "Save connection"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse(definition.value);
    } catch (error) {
      note.show("error", `Not JSON: ${error.message}`);
      return;
    }
    if (body.secret === "") delete body.secret;
    try {
      await api.put(`/v1/connections/${api.seg(name.value.trim())}`, body);
      note.show("ok", `Saved ${name.value.trim()}; its secret is not shown again.`);
      definition.value = EXAMPLE;
      await reload();
    } catch (error) {
      note.show("error", errorText(error));
    }
  });
  return section(
    "Create or replace",
    h("p", { class: "caption" }, "Kinds: bearer, api-key (header), basic (username), oauth2-client-credentials (token_url, client_id, scopes; secret = client secret), oauth2-refresh-token (token_url, client_id, optional client_secret; secret = refresh token, rotated by the host)."),
    form,
    note,
  );
}

export async function render(main, ctx) {
  let left = false;
  ctx.onLeave(() => {
    left = true;
  });
  const list = listSection(() => load());
  async function load() {
    try {
      /** @type {import("../types.js").ConnectionList} */
      const answer = await api.get("/v1/connections");
      if (!left) list.show(answer.connections || []);
    } catch (error) {
      if (!left) list.note.show("error", errorText(error));
    }
  }
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Connections")), list.element, formSection(() => load()));
  await load();
}
