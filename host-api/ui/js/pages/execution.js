// One execution (`#/executions/ID`): what started it, the plugin versions it pinned, the flow's
// graph coloured by how each step went, every step's records in and out, attempts, time, fuel,
// error and last log lines, and the dead letters it produced.

import * as api from "../api.js";
import { h, replace, table, section, time, badge, count, ms, jsonBlock } from "../dom.js";
import { flowGraph } from "../graph.js";

const STATUS_KIND = { succeeded: "ok", "completed-with-dead-letters": "warn", failed: "error", interrupted: "error", running: "info" };

export function statusBadge(status) {
  return badge(status, STATUS_KIND[status] || "");
}

/** How long an execution took, or "running". */
export function duration(execution) {
  if (execution.status === "running") return "running";
  if (execution.finished_at === null || execution.finished_at === undefined) return "—";
  const seconds = execution.finished_at - execution.started_at;
  return seconds < 1 ? "< 1 s" : `${seconds} s`;
}

/** Fuel summed over an execution's steps. */
export function fuelOf(execution) {
  return (execution.steps || []).reduce((sum, step) => sum + (step.fuel || 0), 0);
}

function errorCell(report) {
  if (!report) return "—";
  return [badge(report.code, "error"), " ", report.message];
}

function logLines(logs) {
  return logs.map((entry) => `${entry.level} ${entry.context ? entry.context + ": " : ""}${entry.message}`).join("\n");
}

function stepsTable(execution) {
  const columns = [
    { title: "Step", cell: (s) => s.step },
    { title: "In", cell: (s) => count(s.records_in), class: "num" },
    { title: "Out", cell: (s) => count(s.records_out), class: "num" },
    { title: "Attempts", cell: (s) => count(s.attempts), class: "num" },
    { title: "Time", cell: (s) => ms(s.duration_ms), class: "num" },
    { title: "Fuel", cell: (s) => count(s.fuel), class: "num" },
    { title: "Error", cell: (s) => errorCell(s.error), class: "wrap" },
    { title: "Logs", cell: (s) => (s.logs && s.logs.length ? h("details", {}, h("summary", {}, `${s.logs.length} lines`), h("pre", { class: "log" }, logLines(s.logs))) : "—") },
  ];
  return table(columns, execution.steps, "No steps ran.");
}

function deadLetters(execution, admin) {
  const letters = execution.dead_letters || [];
  if (letters.length === 0) return null;
  const more = execution.dead_letter_count > letters.length ? ` (the first ${letters.length} of ${execution.dead_letter_count}; all are in the flow's queue)` : "";
  const columns = [
    { title: "Step", cell: (d) => d.step },
    { title: "Error", cell: (d) => [errorCell(d.error), (d.reasons || []).length ? h("ul", {}, d.reasons.map((r) => h("li", {}, r))) : null], class: "wrap" },
    { title: "Attempts", cell: (d) => count(d.attempts), class: "num" },
    { title: "Record", cell: (d) => h("code", { class: "record" }, JSON.stringify(d.record.value)), class: "wrap" },
  ];
  const replay = admin ? h("a", { href: `#/flows/${api.seg(execution.flow)}` }, "Replay them from the flow's page") : null;
  return section(`Dead letters${more}`, table(columns, letters), replay);
}

export async function renderExecution(main, ctx, id) {
  /** @type {import("../types.js").Execution} */
  const execution = await api.get(`/v1/executions/${api.seg(id)}`);
  // The flow as it is now: it may have changed or gone since; the execution stands without it.
  /** @type {import("../types.js").FlowDefinition | null} */
  const flow = await api.get(`/v1/flows/${api.seg(execution.flow)}`).catch(() => null);
  const versions = Object.entries(execution.plugin_versions || {}).map(([plugin, version]) => ({ plugin, version }));
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Flow"), h("dd", {}, h("a", { href: `#/flows/${api.seg(execution.flow)}` }, execution.flow)),
    h("dt", {}, "Status"), h("dd", {}, statusBadge(execution.status)),
    h("dt", {}, "Trigger"), h("dd", {}, execution.trigger, execution.queued && execution.queued.length ? ` (queued runs ${execution.queued.join(", ")})` : ""),
    h("dt", {}, "Started"), h("dd", {}, time(execution.started_at)),
    h("dt", {}, "Finished"), h("dd", {}, time(execution.finished_at), ` (${duration(execution)})`),
    h("dt", {}, "Records"), h("dd", {}, `${count(execution.records_in)} in, ${count(execution.delivered)} delivered, ${count(execution.dropped)} dropped, ${count(execution.dead_letter_count)} dead letters`),
    h("dt", {}, "Fuel"), h("dd", {}, count(fuelOf(execution))),
    execution.failure ? [h("dt", {}, "Failure"), h("dd", {}, errorCell(execution.failure))] : null,
    execution.state_error ? [h("dt", {}, "State not committed"), h("dd", {}, errorCell(execution.state_error))] : null,
  );
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", {}, `Execution #${execution.id}`), h("a", { href: `#/flows/${api.seg(execution.flow)}` }, `Back to ${execution.flow}`)),
    h(
      "div",
      { id: "execution" },
      section("Summary", facts),
      section(
        "Pinned plugin versions",
        table([{ title: "Plugin", cell: (v) => h("a", { href: `#/plugins/${api.seg(v.plugin)}` }, v.plugin) }, { title: "Version", cell: (v) => v.version }], versions, "No plugins ran."),
      ),
      flow ? section("Graph", h("p", { class: "caption" }, "The flow as defined now; each step shows its records in → out in this execution."), flowGraph(flow, { execution })) : null,
      section("Steps", stepsTable(execution)),
      deadLetters(execution, ctx.admin),
      h("details", {}, h("summary", {}, "As JSON"), jsonBlock(execution)),
    ),
  );
}
