// Building the page without innerHTML: every value the server answers is set as text, so a
// plugin name or a log line can never become markup (and the CSP allows no inline script).

/**
 * An element: `h("button", {class: "primary", onclick: fn}, "Save")`. Attributes starting with
 * `on` become listeners; `false`/`null`/`undefined` attributes and children are skipped; strings
 * and numbers become text nodes; arrays are flattened.
 */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in element) {
      element.value = value;
    } else if (key === "checked" || key === "disabled" || key === "selected") {
      element[key] = Boolean(value);
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.appendChild(child);
    else element.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces `element`'s children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/**
 * A table: `columns` are `{title, cell: row => node|string, class?}`; `rows` an array. An empty
 * `rows` shows `empty` instead. Wrapped so it scrolls sideways on a phone.
 */
export function table(columns, rows, empty = "Nothing yet.") {
  if (!rows || rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.title)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row)))))),
    ),
  );
}

/** A titled section. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** A message area: `show(kind, text)` with kind "error" | "ok" | "info"; `clear()`. */
export function notice() {
  const element = h("div", { class: "notice", role: "status", "aria-live": "polite" });
  element.show = (kind, text) => {
    element.className = `notice ${kind}`;
    replace(element, text);
  };
  element.clear = () => {
    element.className = "notice";
    element.replaceChildren();
  };
  return element;
}

/** The text of an error for a notice: the API's `code` and message. */
export function errorText(error) {
  return error && error.code ? `${error.code}: ${error.message}` : String(error);
}

/** A labelled form field around `input` (an input, select or textarea). */
export function field(label, input, hint) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2, 10);
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
}

/** Pretty JSON in a <pre>. */
export function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** Seconds since the epoch as a local date-time. */
export function time(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toLocaleString();
}

/** Milliseconds, rounded sensibly. */
export function ms(value) {
  if (value === null || value === undefined) return "—";
  return value < 10 ? `${value.toFixed(2)} ms` : `${Math.round(value)} ms`;
}

/** A count with thousands separators. */
export function count(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString();
}

/** Bytes as KiB/MiB. */
export function bytes(value) {
  if (value === null || value === undefined) return "—";
  if (value < 1024) return `${value} B`;
  if (value < 1 << 20) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / (1 << 20)).toFixed(1)} MiB`;
}

/** A small coloured label. */
export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

/** A button that runs `action` (async), disabling itself meanwhile; errors go to `note`. */
export function actionButton(label, action, note, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      if (note) note.show("error", errorText(error));
      else throw error;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/**
 * A tile: a label, a big value, a line under it; a link when `href` is given.
 * @param {{label: string, value: any, sub?: any, kind?: string, href?: string, id?: string}} tile
 */
export function tile({ label, value, sub, kind, href, id }) {
  const children = [
    h("span", { class: "label" }, label),
    h("span", { class: "value" }, value),
    sub ? h("span", { class: "sub" }, sub) : null,
  ];
  const attrs = { class: `tile ${kind || ""}`.trim(), id };
  return href ? h("a", { ...attrs, href }, ...children) : h("div", attrs, ...children);
}

/** A token's scope as the audit log and the CLI write it: `plugins a, b; flows c`. */
export function scopeText(scope) {
  const list = (names) => (names && names.length ? names.join(", ") : "none");
  return `plugins ${list(scope.plugins)}; flows ${list(scope.flows)}`;
}
