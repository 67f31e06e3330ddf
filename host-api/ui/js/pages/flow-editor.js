// The flow editor (`#/flows/+new`, `#/flows/NAME/edit`, admin): a definition as YAML or JSON,
// sent as it is typed with its media type, so the server's own parser and validation decide, and
// its answer is shown in place — a syntax error at its line and column, with the caret moved
// there; a validation error naming the step. JSON is also YAML, so switching to YAML keeps the
// text; switching back only swaps an untouched template.

import * as api from "../api.js";
import { h, replace, section, field } from "../dom.js";

const TEMPLATES = {
  yaml: "name: my-flow\nsteps:\n  - type: transform\n    id: map\n    plugin: json-mapper\nsinks: []\n",
  json: JSON.stringify({ name: "my-flow", steps: [{ type: "transform", id: "map", plugin: "json-mapper" }], sinks: [] }, null, 2) + "\n",
};
const MEDIA_TYPES = { yaml: "application/yaml", json: "application/json" };

/** The offset in `text` of 1-based `line` and `column`. */
export function offsetOf(text, line, column) {
  let offset = 0;
  for (let i = 1; i < line; i += 1) {
    const next = text.indexOf("\n", offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  return Math.min(text.length, offset + Math.max(0, column - 1));
}

export async function renderEditor(main, ctx, name) {
  if (!ctx.admin) {
    replace(main, section("Flows", h("p", { class: "notice error" }, "Only an admin token may define flows.")));
    return;
  }
  /** @type {import("../types.js").FlowDefinition | null} */
  const existing = name ? await api.get(`/v1/flows/${api.seg(name)}`) : null;
  const format = h("select", { id: "flow-format" }, h("option", { value: "yaml" }, "YAML"), h("option", { value: "json" }, "JSON"));
  format.value = existing ? "json" : "yaml";
  const initial = existing ? JSON.stringify(existing, null, 2) + "\n" : TEMPLATES.yaml;
  const editor = h("textarea", { id: "flow-editor", class: "code", rows: "20", spellcheck: "false", "aria-describedby": "flow-error", autocomplete: "off" }, initial);
  const error = h("p", { class: "error-at", id: "flow-error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary", id: "flow-save" }, existing ? "Save changes" : "Create flow");
  let previous = format.value;
  format.addEventListener("change", () => {
    if (editor.value === TEMPLATES[previous]) editor.value = TEMPLATES[format.value];
    previous = format.value;
  });
  function showError(problem) {
    editor.setAttribute("aria-invalid", "true");
    const where = problem.body && problem.body.line ? `line ${problem.body.line}, column ${problem.body.column}: ` : "";
    error.textContent = `${where}${problem.code ? problem.code + ": " : ""}${problem.message}`;
    if (problem.body && problem.body.line) {
      const at = offsetOf(editor.value, problem.body.line, problem.body.column || 1);
      editor.focus();
      editor.setSelectionRange(at, at);
    }
  }

  const form = h(
    "form",
    { id: "flow-form" },
    h("div", { class: "form-row" }, field("Format", format)),
    field("Definition", editor, "Steps: transform, validate, route, fan-out; sinks; named branches; triggers: webhook, cron. The server checks it against the installed plugins."),
    error,
    h("div", { class: "actions-row" }, save, h("a", { href: existing ? `#/flows/${api.seg(name)}` : "#/flows" }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    error.textContent = "";
    editor.removeAttribute("aria-invalid");
    try {
      const type = MEDIA_TYPES[format.value];
      /** @type {import("../types.js").FlowDefinition} */
      const saved = existing ? await api.put(`/v1/flows/${api.seg(name)}`, editor.value, type) : await api.post("/v1/flows", editor.value, type);
      ctx.navigate(`#/flows/${api.seg(saved.name)}`);
    } catch (problem) {
      showError(problem);
    } finally {
      save.disabled = false;
    }
  });
  replace(main, h("div", { class: "page-head" }, h("h1", {}, existing ? `Edit ${name}` : "New flow")), section("Definition", form));
  editor.focus();
}
