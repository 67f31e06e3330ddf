// Trust (admin only): which publisher keys the server accepts signatures from, and which API
// tokens exist. The two things an operator must be able to revoke quickly, so each row has its
// revoke button; a new token's value is shown here once, since the server keeps only its hash.

import * as api from "../api.js";
import { h, replace, table, section, notice, errorText, field, time, badge, actionButton, scopeText } from "../dom.js";

/** The `admin` token is replaced by restarting the server, never revoked (the API refuses). */
const ADMIN_TOKEN_NAME = "admin";

/** Bytes as lower-case hex. */
function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

function keysSection(ctx, reload) {
  const note = notice();
  const list = h("div", { id: "keys-list" }, h("p", { class: "loading" }, "Loading…"));
  const name = h("input", { type: "text", id: "key-name", name: "key-name", required: true, autocomplete: "off" });
  const publicKey = h("input", {
    type: "text",
    id: "key-public",
    name: "key-public",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    class: "mono",
  });
  const file = h("input", { type: "file", id: "key-file", accept: ".pub,application/octet-stream" });
  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    try {
      publicKey.value = hex(await chosen.arrayBuffer());
      if (!name.value) name.value = chosen.name.replace(/\.pub$/, "");
      note.show("info", `Read ${chosen.size} bytes from ${chosen.name}.`);
    } catch (error) {
      note.show("error", `Cannot read ${chosen.name}: ${error.message || error}`);
    }
  });

  const form = h(
    "form",
    { id: "key-form", class: "form-row" },
    field("Name", name),
    field("Public key (hex)", publicKey),
    h("button", { type: "submit", class: "primary", id: "key-add" }, "Trust key"),
  );
  const hint = h(
    "p",
    { class: "caption form-hint" },
    "The .pub file that ",
    h("code", {}, "plugboard keygen"),
    " writes, as hex (",
    h("code", {}, "xxd -p key.pub | tr -d '\\n'"),
    "), or choose the file and it is read here.",
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("#key-add");
    button.disabled = true;
    try {
      /** @type {import("../types.js").Key} */
      const added = await api.post("/v1/keys", { name: name.value.trim(), public_key: publicKey.value.trim() });
      note.show("ok", `Trusted ${added.name} (key id ${added.key_id}).`);
      form.reset();
      file.value = "";
      await reload();
    } catch (error) {
      note.show("error", errorText(error));
    } finally {
      button.disabled = false;
    }
  });

  function show(keys) {
    const columns = [
      { title: "Name", cell: (k) => k.name },
      { title: "Key id", cell: (k) => h("code", {}, k.key_id) },
      { title: "Added", cell: (k) => time(k.added_at), class: "nowrap" },
      { title: "State", cell: (k) => (k.revoked_at ? badge(`revoked ${time(k.revoked_at)}`, "error") : badge("trusted", "ok")) },
      {
        title: "",
        class: "actions",
        cell: (k) =>
          k.revoked_at
            ? null
            : actionButton(
                "Revoke",
                async () => {
                  if (!window.confirm(`Revoke key ${k.name} (${k.key_id})? Every active plugin it signed is unloaded. This cannot be undone.`)) return;
                  await api.post(`/v1/keys/${api.seg(k.key_id)}/revoke`);
                  note.show("ok", `Revoked ${k.name}.`);
                  await reload();
                },
                note,
                { class: "danger small", "data-revoke-key": k.key_id, "aria-label": `Revoke key ${k.name}` },
              ),
      },
    ];
    replace(list, table(columns, keys, "No trusted keys: uploads are refused until a publisher key is added."));
  }

  const element = section(
    "Publisher keys",
    h("p", { class: "caption" }, "Plugins must be signed by a trusted key to be uploaded. Revoking a key unloads what it signed."),
    list,
    h("h3", {}, "Trust a key"),
    form,
    hint,
    field("Or read a .pub file", file),
    note,
  );
  return { element, show, note };
}

/** `a, b` → ["a", "b"]: the names a scope field lists. */
function names(text) {
  return text.split(",").map((name) => name.trim()).filter((name) => name.length > 0);
}

function tokensSection(ctx, reload) {
  const note = notice();
  const list = h("div", { id: "tokens-list" }, h("p", { class: "loading" }, "Loading…"));
  const created = h("div", { id: "token-created", "aria-live": "polite" });
  const name = h("input", { type: "text", id: "token-name", name: "token-name", required: true, maxlength: "64", autocomplete: "off" });
  const role = h(
    "select",
    { id: "token-role", name: "token-role" },
    h("option", { value: "invoker" }, "invoker: invoke plugins, run flows, read"),
    h("option", { value: "publisher" }, "publisher: upload plugins (cannot invoke or read)"),
    h("option", { value: "admin" }, "admin: everything"),
  );
  const plugins = h("input", { type: "text", id: "token-plugins", name: "token-plugins", autocomplete: "off", placeholder: "all" });
  const flows = h("input", { type: "text", id: "token-flows", name: "token-flows", autocomplete: "off", placeholder: "all" });
  const form = h(
    "form",
    { id: "token-form", class: "form-row" },
    field("Name", name),
    field("Role", role),
    field("Only plugins (comma-separated)", plugins),
    field("Only flows (comma-separated)", flows),
    h("button", { type: "submit", class: "primary", id: "token-create" }, "Create token"),
  );

  function showCreated(answer) {
    const value = h("code", { id: "token-value" }, answer.token);
    const copy = h("button", { type: "button", id: "token-copy", class: "small" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        if (!navigator.clipboard || !window.isSecureContext) throw new Error("the clipboard is not available here; select the value instead");
        await navigator.clipboard.writeText(answer.token);
        copy.textContent = "Copied";
      } catch (error) {
        note.show("error", `Copy failed: ${error.message || error}`);
      }
    });
    replace(
      created,
      h(
        "div",
        { class: "notice ok" },
        h("strong", {}, `Token ${answer.name} (${answer.role}${answer.scope ? `, scoped to ${scopeText(answer.scope)}` : ""}) created. `),
        "Copy it now: it will not be shown again.",
        h("div", { class: "secret" }, value, copy),
      ),
    );
    copy.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("#token-create");
    button.disabled = true;
    created.replaceChildren();
    note.clear();
    try {
      const body = { name: name.value.trim(), role: role.value };
      const scope = { plugins: names(plugins.value), flows: names(flows.value) };
      if (scope.plugins.length || scope.flows.length) body.scope = scope;
      /** @type {import("../types.js").CreatedToken} */
      const answer = await api.post("/v1/tokens", body);
      form.reset();
      showCreated(answer);
      await reload();
    } catch (error) {
      note.show("error", errorText(error));
    } finally {
      button.disabled = false;
    }
  });

  function show(tokens) {
    const columns = [
      { title: "Name", cell: (t) => (t.name === ctx.me.name ? [t.name, " ", badge("you", "info")] : t.name) },
      { title: "Role", cell: (t) => badge(t.role, t.role === "admin" ? "warn" : "") },
      {
        title: "Scope",
        cell: (t) => (t.scope ? h("span", { "data-token-scope": t.name }, scopeText(t.scope)) : h("span", { class: "muted" }, "everything its role allows")),
      },
      {
        title: "",
        class: "actions",
        cell: (t) =>
          t.name === ADMIN_TOKEN_NAME
            ? h("span", { class: "muted" }, "not revocable")
            : actionButton(
                "Revoke",
                async () => {
                  const self = t.name === ctx.me.name ? " You are signed in with it and will be signed out." : "";
                  if (!window.confirm(`Revoke token ${t.name}? Requests with it are refused from now on.${self}`)) return;
                  await api.del(`/v1/tokens/${api.seg(t.name)}`);
                  note.show("ok", `Revoked ${t.name}.`);
                  await reload();
                },
                note,
                { class: "danger small", "data-revoke-token": t.name, "aria-label": `Revoke token ${t.name}` },
              ),
      },
    ];
    replace(list, table(columns, tokens, "No tokens."));
  }

  const element = section(
    "API tokens",
    h("p", { class: "caption" }, "Tokens for the CLI, scripts and this dashboard. The server stores only a hash: a value is shown once, when created. The admin token is replaced by restarting the server with PLUGBOARD_ADMIN_TOKEN, not revoked."),
    list,
    h("h3", {}, "Create a token"),
    form,
    created,
    note,
  );
  return { element, show, note };
}

export async function render(main, ctx) {
  if (!ctx.admin) {
    replace(main, section("Trust", h("p", { class: "notice error" }, "Only an admin token may manage keys and tokens.")));
    return;
  }
  let left = false;
  ctx.onLeave(() => {
    left = true;
  });

  const keys = keysSection(ctx, () => loadKeys());
  const tokens = tokensSection(ctx, () => loadTokens());

  async function loadKeys() {
    try {
      /** @type {import("../types.js").KeyList} */
      const answer = await api.get("/v1/keys");
      if (!left) keys.show(answer.keys || []);
    } catch (error) {
      if (!left) keys.note.show("error", errorText(error));
    }
  }
  async function loadTokens() {
    try {
      /** @type {import("../types.js").TokenList} */
      const answer = await api.get("/v1/tokens");
      if (!left) tokens.show(answer.tokens || []);
    } catch (error) {
      if (!left) tokens.note.show("error", errorText(error));
    }
  }

  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Trust")), keys.element, tokens.element);
  await Promise.all([loadKeys(), loadTokens()]);
}
