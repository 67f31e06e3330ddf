// Flows: the list (`#/flows`), one flow's page (`#/flows/NAME`: its graph, a run with input, its
// executions newest first and its dead letters with replay and delete), the editor
// (`#/flows/+new`, `#/flows/NAME/edit`, in flow-editor.js) and one execution
// (`#/executions/ID`, in execution.js). Lists are paged by the API's cursors, so a flow with a
// million executions costs one page.

import * as api from "../api.js";
import { h, replace, table, section, notice, errorText, field, time, badge, count, jsonBlock, actionButton } from "../dom.js";
import { flowGraph } from "../graph.js";
import { renderEditor } from "./flow-editor.js";
import { renderExecution, statusBadge, duration, fuelOf } from "./execution.js";

const PAGE_SIZE = 20;

function triggersText(flow) {
  const triggers = (flow.triggers || []).map((t) => (t.type === "cron" ? `cron ${t.schedule}` : t.type));
  return ["manual", ...triggers].join(", ");
}

async function renderList(main, ctx) {
  /** @type {import("../types.js").FlowList} */
  const answer = await api.get("/v1/flows");
  const columns = [
    { title: "Name", cell: (f) => h("a", { href: `#/flows/${api.seg(f.name)}` }, f.name) },
    { title: "Triggers", cell: triggersText },
    { title: "Steps", cell: (f) => count((f.steps || []).length + Object.values(f.branches || {}).reduce((n, b) => n + (b.steps || []).length, 0)), class: "num" },
    { title: "Sinks", cell: (f) => count((f.sinks || []).length + Object.values(f.branches || {}).reduce((n, b) => n + (b.sinks || []).length, 0)), class: "num" },
    { title: "Source", cell: (f) => (f.source ? f.source.plugin : "—") },
  ];
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Flows"), ctx.admin ? h("a", { class: "button primary", href: "#/flows/+new", id: "flow-new" }, "New flow") : null),
    section("Defined", table(columns, answer.flows, "No flows yet.")),
  );
}

/** A paged list: `load(cursor)` answers `{rows, next}`; "Older" fetches the next page. */
function pagedTable(columns, load, empty, id) {
  const body = h("div", { id });
  const more = h("button", { type: "button", class: "small", hidden: true }, "Older");
  const note = notice();
  let cursor = null;
  let rows = [];
  async function fetchPage(append) {
    const page = await load(append ? cursor : undefined);
    rows = append ? rows.concat(page.rows) : page.rows;
    cursor = page.next ?? null;
    replace(body, table(columns, rows, empty));
    more.hidden = cursor === null;
  }
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      await fetchPage(true);
    } catch (error) {
      note.show("error", errorText(error));
    } finally {
      more.disabled = false;
    }
  });
  return { element: h("div", {}, body, h("div", { class: "actions-row" }, more), note), reload: () => fetchPage(false) };
}

function executionsCard(name) {
  const columns = [
    { title: "Id", cell: (e) => h("a", { href: `#/executions/${e.id}` }, `#${e.id}`) },
    { title: "Status", cell: (e) => statusBadge(e.status) },
    { title: "Trigger", cell: (e) => e.trigger },
    { title: "Started", cell: (e) => time(e.started_at), class: "nowrap" },
    { title: "Took", cell: duration, class: "num" },
    { title: "In", cell: (e) => count(e.records_in), class: "num" },
    { title: "Delivered", cell: (e) => count(e.delivered), class: "num" },
    { title: "Dead", cell: (e) => count(e.dead_letter_count), class: "num" },
    { title: "Fuel", cell: (e) => count(fuelOf(e)), class: "num" },
    { title: "Versions", cell: (e) => Object.entries(e.plugin_versions || {}).map(([p, v]) => `${p} ${v}`).join(", "), class: "wrap" },
  ];
  const paged = pagedTable(
    columns,
    async (cursor) => {
      /** @type {import("../types.js").ExecutionPage} */
      const answer = await api.get(api.withQuery(`/v1/flows/${api.seg(name)}/executions`, { order: "desc", limit: PAGE_SIZE, cursor }));
      return { rows: answer.executions, next: answer.next_cursor };
    },
    "No executions yet.",
    "executions",
  );
  return { element: section("Executions", h("p", { class: "caption" }, "Newest first."), paged.element), reload: paged.reload };
}

function deadLettersCard(name, ctx, afterReplay) {
  const note = notice();
  let paged;
  const replay = async (ids) => {
    /** @type {import("../types.js").Replayed} */
    const answer = await api.post(`/v1/flows/${api.seg(name)}/dlq/replay`, ids ? { ids } : {});
    const runs = answer.executions || [];
    replace(
      note,
      `Replayed in ${runs.length} execution${runs.length === 1 ? "" : "s"}: `,
      runs.map((e, i) => [i ? ", " : "", h("a", { href: `#/executions/${e.id}` }, `#${e.id}`), ` (${e.status})`]),
    );
    note.className = "notice ok";
    await paged.reload();
    await afterReplay();
  };
  const actions = (d) =>
    ctx.admin
      ? [
          actionButton("Replay", () => replay([d.id]), note, { class: "small", "data-replay": d.id, "aria-label": `Replay dead letter ${d.id}` }),
          " ",
          actionButton(
            "Delete",
            async () => {
              if (!window.confirm(`Delete dead letter ${d.id}? Its record is gone for good.`)) return;
              await api.del(`/v1/flows/${api.seg(name)}/dlq/${d.id}`);
              note.show("ok", `Deleted dead letter ${d.id}.`);
              await paged.reload();
            },
            note,
            { class: "small danger", "data-delete": d.id, "aria-label": `Delete dead letter ${d.id}` },
          ),
        ]
      : null;
  const columns = [
    { title: "Id", cell: (d) => String(d.id) },
    { title: "At", cell: (d) => time(d.at), class: "nowrap" },
    { title: "Step", cell: (d) => d.step },
    { title: "Error", cell: (d) => [badge(d.error.code, "error"), " ", d.error.message, (d.reasons || []).length ? h("ul", {}, d.reasons.map((r) => h("li", {}, r))) : null], class: "wrap" },
    { title: "Record", cell: (d) => h("code", { class: "record" }, JSON.stringify(d.record.value)), class: "wrap" },
    { title: "From", cell: (d) => (d.execution ? h("a", { href: `#/executions/${d.execution}` }, `#${d.execution}`) : "—") },
    { title: "", cell: actions, class: "actions" },
  ];
  paged = pagedTable(
    columns,
    async (cursor) => {
      /** @type {import("../types.js").DeadLetterPage} */
      const answer = await api.get(api.withQuery(`/v1/flows/${api.seg(name)}/dlq`, { order: "desc", limit: PAGE_SIZE, cursor }));
      return { rows: answer.dead_letters, next: answer.next_cursor };
    },
    "No dead letters.",
    "dlq",
  );
  const all = ctx.admin
    ? actionButton(
        "Replay all",
        async () => {
          if (!window.confirm(`Replay every dead letter of ${name} from the step it failed at?`)) return;
          await replay(null);
        },
        note,
        { id: "dlq-replay-all" },
      )
    : null;
  const element = section(
    "Dead letters",
    h("p", { class: "caption" }, "Records that failed for good, with the step they failed at: a replay runs them again from there with the plugins active now."),
    paged.element,
    all ? h("div", { class: "actions-row" }, all) : null,
    note,
  );
  return { element, reload: paged.reload };
}

function runCard(name, onRun) {
  const input = h("textarea", { id: "flow-run-input", rows: "5", class: "code short", spellcheck: "false" }, "[]");
  const result = h("div", { id: "flow-run-result", "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "primary", id: "flow-run" }, "Run");
  const form = h("form", { id: "flow-run-form" }, field("Input records (a JSON array)", input, "Empty: a flow with a source reads from it."), h("div", { class: "actions-row" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let records;
    try {
      records = JSON.parse(input.value || "[]");
      if (!Array.isArray(records)) throw new Error("the input must be a JSON array of records");
      input.removeAttribute("aria-invalid");
    } catch (reason) {
      input.setAttribute("aria-invalid", "true");
      replace(result, h("p", { class: "error-at" }, reason.message));
      return;
    }
    button.disabled = true;
    replace(result, h("p", { class: "loading" }, "Running…"));
    try {
      /** @type {import("../types.js").Execution} */
      const execution = await api.post(`/v1/flows/${api.seg(name)}/run`, { records });
      replace(
        result,
        h(
          "p",
          { class: `notice ${execution.status === "succeeded" ? "ok" : "info"}` },
          h("a", { href: `#/executions/${execution.id}` }, `Execution #${execution.id}`),
          `: ${execution.status}, ${execution.records_in} in, ${execution.delivered} delivered, ${execution.dead_letter_count} dead letters.`,
        ),
      );
      await onRun();
    } catch (error) {
      replace(result, h("p", { class: "notice error" }, errorText(error)));
    } finally {
      button.disabled = false;
    }
  });
  return section("Run", form, result);
}

function webhookCard(flow) {
  const note = notice();
  const trigger = (flow.triggers || []).find((t) => t.type === "webhook") || {};
  const scheme = trigger.scheme || "plugboard";
  const secret = h("input", { type: "password", id: "webhook-secret", autocomplete: "new-password", minlength: "16", required: true });
  const keep = h("input", { type: "number", id: "webhook-keep-previous", min: "0", max: "2592000", value: "0" });
  const form = h(
    "form",
    { class: "form-row" },
    field("New webhook secret", secret),
    field("Keep the previous one (seconds)", keep),
    h("button", { type: "submit" }, "Set secret"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const keepPrevious = Number(keep.value) || 0;
      await api.put(`/v1/flows/${api.seg(flow.name)}/webhook-secret`, { secret: secret.value, keep_previous_secs: keepPrevious });
      form.reset();
      note.show("ok", keepPrevious > 0 ? `Secret set; the previous one is accepted for ${keepPrevious} s more.` : "Secret set. Senders sign with it from now on.");
    } catch (error) {
      note.show("error", errorText(error));
    }
  });
  const events = (trigger.events || []).length ? ` Events: ${trigger.events.join(", ")}.` : "";
  return section(
    "Webhook",
    h("p", { class: "caption" }, "Deliveries to ", h("code", {}, `POST /v1/hooks/${flow.name}`), ` are authenticated by the ${scheme} scheme under this secret, set as the sender hands it out (write-only).${events}`),
    form,
    note,
  );
}

async function renderFlow(main, ctx, name) {
  /** @type {import("../types.js").FlowDefinition} */
  const flow = await api.get(`/v1/flows/${api.seg(name)}`);
  const note = notice();
  const executions = executionsCard(name);
  const dlq = deadLettersCard(name, ctx, () => executions.reload());
  const remove = ctx.admin
    ? actionButton(
        "Delete",
        async () => {
          if (!window.confirm(`Delete flow ${name}? Its executions and dead letters stay readable by their ids.`)) return;
          await api.del(`/v1/flows/${api.seg(name)}`);
          ctx.navigate("#/flows");
        },
        note,
        { class: "danger", id: "flow-delete" },
      )
    : null;
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, flow.name),
      h("div", { class: "actions-row" }, ctx.admin ? h("a", { class: "button", href: `#/flows/${api.seg(name)}/edit`, id: "flow-edit" }, "Edit") : null, remove, h("a", { href: "#/flows" }, "All flows")),
    ),
    note,
    section("Definition", h("p", { class: "caption" }, `Triggers: ${triggersText(flow)}${flow.ordered ? " · ordered" : ""}.`), flowGraph(flow, { id: "flow-graph" }), h("details", {}, h("summary", {}, "As JSON"), jsonBlock(flow))),
    runCard(name, async () => {
      await executions.reload();
      await dlq.reload();
    }),
    executions.element,
    dlq.element,
    ctx.admin && (flow.triggers || []).some((t) => t.type === "webhook") ? webhookCard(flow) : null,
  );
  await Promise.all([executions.reload(), dlq.reload()]);
}

export async function render(main, ctx) {
  if (location.hash.startsWith("#/executions")) return renderExecution(main, ctx, ctx.params[0]);
  const [name, action] = ctx.params;
  // `+` is in no flow name, so a flow may be called "new".
  if (name === "+new") return renderEditor(main, ctx, null);
  if (name && action === "edit") return renderEditor(main, ctx, name);
  if (name) return renderFlow(main, ctx, name);
  return renderList(main, ctx);
}
