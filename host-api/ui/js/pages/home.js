// The landing page: is the server healthy, and is anything wrong right now? One tile per question
// (readiness, plugins by state, flows, queue, dead letters, recent invocations and errors), each a
// link to the page that explains it. Every request is separate so one failure leaves the others.

import * as api from "../api.js";
import { h, replace, notice, errorText, count, ms, tile } from "../dom.js";

/** How far back the "recent" tiles sum the metric samples. */
const RECENT_SECONDS = 5 * 60;

/** Settles every promise; a rejection becomes `{error}` so one failure leaves the others. */
async function settle(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

/** Each plugin's health status ("ready" | "inactive" | "failed" | "unknown"). */
async function pluginStates(plugins) {
  const states = await Promise.all(
    plugins.map(async (plugin) => {
      try {
        /** @type {import("../types.js").Health} */
        const health = await api.get(`/v1/plugins/${api.seg(plugin.name)}/health`);
        return health.status || "unknown";
      } catch {
        return plugin.active_version ? "unknown" : "inactive";
      }
    }),
  );
  const tally = { ready: 0, inactive: 0, failed: 0, unknown: 0 };
  for (const state of states) tally[state in tally ? state : "unknown"] += 1;
  return tally;
}

/** Sums of the samples within the last `RECENT_SECONDS`, and the latest sample. */
export function recent(history) {
  const samples = (history && history.samples) || [];
  const last = samples.length ? samples[samples.length - 1] : null;
  const from = last ? last.at - RECENT_SECONDS : 0;
  let invocations = 0;
  let errors = 0;
  for (const sample of samples) {
    if (sample.at <= from) continue;
    invocations += sample.invocations || 0;
    for (const n of Object.values(sample.errors || {})) errors += n;
  }
  return { last, invocations, errors, samples: samples.length };
}

function serverTile(ready) {
  if (ready.error) {
    return tile({ label: "Server", value: "Not ready", sub: errorText(ready.error), kind: "error", id: "tile-server" });
  }
  const body = ready.value || {};
  const ok = body.status === "ready";
  return tile({
    label: "Server",
    value: ok ? "Ready" : String(body.status || "unknown"),
    sub: `${count(body.plugins_loaded)} plugins loaded`,
    kind: ok ? "ok" : "warn",
    id: "tile-server",
  });
}

function pluginsTile(plugins, tally) {
  if (plugins.error) {
    return tile({ label: "Plugins", value: "—", sub: errorText(plugins.error), kind: "error", href: "#/plugins", id: "tile-plugins" });
  }
  const list = plugins.value.plugins || [];
  const parts = [`${tally.ready} active`, `${tally.inactive} inactive`];
  if (tally.failed) parts.push(`${tally.failed} failed`);
  if (tally.unknown) parts.push(`${tally.unknown} unknown`);
  return tile({
    label: "Plugins",
    value: count(list.length),
    sub: parts.join(" · "),
    kind: tally.failed ? "error" : "",
    href: "#/plugins",
    id: "tile-plugins",
  });
}

function flowsTile(flows) {
  if (flows.error) {
    return tile({ label: "Flows", value: "—", sub: errorText(flows.error), kind: "error", href: "#/flows", id: "tile-flows" });
  }
  const list = flows.value.flows || [];
  const has = (flow, type) => (flow.triggers || []).some((trigger) => trigger.type === type);
  const cron = list.filter((flow) => has(flow, "cron")).length;
  const webhook = list.filter((flow) => has(flow, "webhook")).length;
  return tile({
    label: "Flows",
    value: count(list.length),
    sub: `${cron} on a schedule · ${webhook} by webhook`,
    href: "#/flows",
    id: "tile-flows",
  });
}

function metricTiles(history, reads) {
  // A scoped token reads no server-wide metrics.
  if (!history) return [];
  if (history.error) {
    return [tile({ label: "Metrics", value: "—", sub: errorText(history.error), kind: "warn", href: "#/monitoring", id: "tile-metrics" })];
  }
  const { last, invocations, errors } = recent(history.value);
  const minutes = `last ${RECENT_SECONDS / 60} min`;
  return [
    tile({
      label: "Invocations",
      value: count(invocations),
      sub: minutes,
      href: "#/monitoring",
      id: "tile-invocations",
    }),
    tile({
      label: "Errors",
      value: count(errors),
      sub: invocations ? `${((errors / invocations) * 100).toFixed(1)}% of ${minutes}` : minutes,
      kind: errors ? "error" : "ok",
      href: "#/monitoring",
      id: "tile-errors",
    }),
    tile({
      label: "Latency p99",
      value: last ? ms(last.latency_p99_ms) : "—",
      sub: last && last.latency_p50_ms !== null && last.latency_p50_ms !== undefined ? `p50 ${ms(last.latency_p50_ms)}` : "no recent invocation",
      href: "#/monitoring",
      id: "tile-latency",
    }),
    tile({
      label: "Queue depth",
      value: last ? count(last.queue_depth) : "—",
      sub: "runs waiting for a worker",
      kind: last && last.queue_depth > 0 ? "warn" : "",
      href: "#/monitoring",
      id: "tile-queue",
    }),
    tile({
      label: "Dead letters",
      value: last ? count(last.dead_letters) : "—",
      sub: "runs that gave up; replay from a flow",
      kind: last && last.dead_letters > 0 ? "warn" : "",
      href: reads ? "#/flows" : undefined,
      id: "tile-dlq",
    }),
  ];
}

export async function render(main, ctx) {
  // A publisher token may upload and read metrics, not list plugins or flows.
  const reads = ctx.me.role !== "publisher";
  const note = notice();
  const summary = h("div", { class: "grid", id: "health-summary", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading…"));
  const refresh = h("button", { type: "button", id: "home-refresh" }, "Refresh");
  const links = h(
    "section",
    { class: "card" },
    h("h2", {}, "Go to"),
    h(
      "ul",
      { class: "links" },
      h("li", {}, h("a", { href: "#/plugins" }, reads ? "Plugins: versions, health, invoke" : "Plugins: upload")),
      reads ? h("li", {}, h("a", { href: "#/flows" }, "Flows: definitions, executions, dead letters")) : null,
      h("li", {}, h("a", { href: "#/monitoring" }, "Monitoring: charts over the last hour")),
      ctx.admin ? h("li", {}, h("a", { href: "#/trust" }, "Trust: keys and API tokens")) : null,
      ctx.admin ? h("li", {}, h("a", { href: "#/audit" }, "Audit log")) : null,
    ),
  );
  const updated = h("p", { class: "caption" });
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), h("div", { class: "actions-row" }, updated, refresh)),
    note,
    h("h2", { class: "visually-hidden" }, "Health summary"),
    summary,
    links,
  );

  let stopped = false;
  ctx.onLeave(() => {
    stopped = true;
  });

  async function load() {
    summary.setAttribute("aria-busy", "true");
    const [ready, plugins, flows, history] = await Promise.all([
      settle(api.get("/readyz")),
      reads ? settle(api.get("/v1/plugins")) : null,
      reads ? settle(api.get("/v1/flows")) : null,
      ctx.me.scope ? null : settle(api.get("/v1/metrics/history")),
    ]);
    const tally = plugins && plugins.value ? await pluginStates(plugins.value.plugins || []) : null;
    if (stopped) return;
    replace(summary, serverTile(ready), plugins ? pluginsTile(plugins, tally) : null, flows ? flowsTile(flows) : null, metricTiles(history, reads));
    summary.setAttribute("aria-busy", "false");
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    const failed = [ready, plugins, flows, history].filter((result) => result && result.error);
    if (failed.length) note.show("error", `Some figures are missing: ${failed.map((f) => errorText(f.error)).join("; ")}`);
    else note.clear();
  }

  refresh.addEventListener("click", () => {
    load().catch((error) => note.show("error", errorText(error)));
  });
  await load();
}
