// Monitoring: the server's own metric history (`GET /v1/metrics/history`, up to an hour of samples
// kept in memory) as charts, so an operator sees trends without running Prometheus. The page polls
// at the server's sampling interval and stops when the user leaves it.

import * as api from "../api.js";
import { h, replace, notice, errorText } from "../dom.js";
import { lineChart } from "../chart.js";

/** The charts: container id, title, unit and how to turn samples into series. */
const CHARTS = [
  {
    id: "chart-invocations",
    title: "Invocations per interval",
    integer: true,
    series: (samples) => [{ name: "invocations", points: samples.map((s) => [s.at, s.invocations ?? 0]) }],
  },
  {
    id: "chart-errors",
    title: "Errors by code, per interval",
    integer: true,
    series: errorSeries,
  },
  {
    id: "chart-latency",
    title: "Invocation latency",
    unit: "ms",
    series: (samples) => [
      { name: "p50", points: samples.map((s) => [s.at, s.latency_p50_ms ?? null]) },
      { name: "p99", points: samples.map((s) => [s.at, s.latency_p99_ms ?? null]) },
    ],
  },
  {
    id: "chart-queue",
    title: "Queue depth",
    integer: true,
    series: (samples) => [{ name: "queued runs", points: samples.map((s) => [s.at, s.queue_depth ?? 0]) }],
  },
  {
    id: "chart-dlq",
    title: "Dead letters",
    integer: true,
    series: (samples) => [{ name: "dead letters", points: samples.map((s) => [s.at, s.dead_letters ?? 0]) }],
  },
];

/** One series per error code seen in the window (0 where a sample has none of it). */
export function errorSeries(samples) {
  const codes = new Set();
  for (const sample of samples) for (const code of Object.keys(sample.errors || {})) codes.add(code);
  if (codes.size === 0) {
    return [{ name: "errors", points: samples.map((s) => [s.at, 0]) }];
  }
  return [...codes].sort().map((code) => ({
    name: code,
    points: samples.map((s) => [s.at, (s.errors && s.errors[code]) || 0]),
  }));
}

/** Totals over the window, for the line above the charts. */
function totals(samples) {
  let invocations = 0;
  let errors = 0;
  for (const sample of samples) {
    invocations += sample.invocations || 0;
    for (const n of Object.values(sample.errors || {})) errors += n;
  }
  return { invocations, errors };
}

function windowText(samples, interval) {
  if (samples.length === 0) return "No samples yet: the server records one every interval after it starts.";
  const span = samples[samples.length - 1].at - samples[0].at;
  const minutes = Math.max(1, Math.round(span / 60));
  const { invocations, errors } = totals(samples);
  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
  return `${plural(samples.length, "sample")} every ${interval} s over ${minutes} min: ${plural(invocations, "invocation")}, ${plural(errors, "error")}.`;
}

export async function render(main, ctx) {
  const note = notice();
  const status = h("p", { class: "caption status-line" });
  const containers = CHARTS.map((chart) => h("section", { class: "card", id: chart.id, "aria-label": chart.title }, h("p", { class: "loading" }, "Loading…")));
  const pause = h("button", { type: "button", id: "monitoring-pause", "aria-pressed": "false" }, "Pause updates");

  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Monitoring"),
        h("p", { class: "caption" }, "From the server's own metrics, last hour (kept in memory since it started)."),
      ),
      h("div", { class: "actions-row" }, pause),
    ),
    note,
    status,
    h("div", { class: "grid charts" }, containers),
  );

  let interval = 5;
  let timer = null;
  let busy = false;
  let paused = false;
  let left = false;

  async function load() {
    if (busy || left) return;
    busy = true;
    try {
      /** @type {import("../types.js").MetricsHistory} */
      const history = await api.get("/v1/metrics/history");
      if (left) return;
      const samples = (history && history.samples) || [];
      interval = Math.max(1, Number(history && history.interval_seconds) || 5);
      CHARTS.forEach((chart, index) => {
        const container = containers[index];
        // Drawn at the container's width (less its padding) so axis text keeps its real size.
        const style = getComputedStyle(container);
        const width = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        replace(
          container,
          lineChart({
            title: chart.title,
            unit: chart.unit || "",
            integer: Boolean(chart.integer),
            series: chart.series(samples),
            span: interval * 12,
            width,
          }),
        );
      });
      status.textContent = `${windowText(samples, interval)} Updated ${new Date().toLocaleTimeString()}.`;
      note.clear();
    } catch (error) {
      if (!left) note.show("error", errorText(error));
    } finally {
      busy = false;
    }
  }

  function schedule() {
    if (timer) clearInterval(timer);
    timer = paused || left ? null : setInterval(() => load(), interval * 1000);
  }

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume updates" : "Pause updates";
    if (!paused) load();
    schedule();
  });

  ctx.onLeave(() => {
    left = true;
    if (timer) clearInterval(timer);
    timer = null;
  });

  await load();
  schedule();
}
