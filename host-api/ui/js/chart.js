// A small SVG time-series chart for the monitoring page, built with createElementNS so the CSP
// (no inline style, no script but ours) holds and no charting library has to be fetched or vendored.
// The SVG sizes by its viewBox, so it scales to its container; colours come from app.css classes
// (s1..s6), which follow the light/dark scheme.

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const DEFAULT_WIDTH = 600;
const PAD = { left: 44, right: 14, top: 10, bottom: 26 };
const SERIES_CLASSES = 6;

/** An SVG element with attributes and children. */
function s(tag, attrs, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) element.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/**
 * A "nice" upper bound and step for `max` over about `ticks` intervals (1, 2, 2.5, 5 × 10^n);
 * with `integer`, steps are whole numbers (counts).
 */
export function niceScale(max, ticks = 4, integer = false) {
  if (!(max > 0)) return integer ? { max: 1, step: 1 } : { max: 1, step: 0.25 };
  const raw = max / ticks;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
  if (integer) step = Math.max(1, Math.round(step));
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

/** A value for an axis label or a legend: short, with the unit. */
export function formatValue(value, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  let text;
  const abs = Math.abs(value);
  if (abs >= 1e6) text = `${+(value / 1e6).toFixed(1)}M`;
  else if (abs >= 1e4) text = `${+(value / 1e3).toFixed(1)}k`;
  else if (abs >= 100 || Number.isInteger(value)) text = String(Math.round(value));
  else if (abs >= 1) text = String(+value.toFixed(1));
  else text = String(+value.toFixed(2));
  return unit ? `${text} ${unit}` : text;
}

/** A local time as 24-hour HH:MM or HH:MM:SS: short enough for an axis on a phone. */
function clock(seconds, withSeconds) {
  const date = new Date(seconds * 1000);
  const parts = [date.getHours(), date.getMinutes()].concat(withSeconds ? [date.getSeconds()] : []);
  return parts.map((n) => String(n).padStart(2, "0")).join(":");
}

/** The latest non-null value of a series, or null. */
function latest(points) {
  for (let i = points.length - 1; i >= 0; i--) {
    if (points[i][1] !== null && points[i][1] !== undefined) return points[i][1];
  }
  return null;
}

/** Path data for one series; a null value breaks the line. */
function pathData(points, x, y) {
  let d = "";
  let pen = false;
  for (const [t, v] of points) {
    if (v === null || v === undefined) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  return d;
}

/**
 * A line chart: `series` is `[{name, points: [[unixSeconds, value|null], ...]}]` (oldest first).
 * `unit` labels the values ("ms"); `integer` keeps the value ticks whole (counts); `span` (seconds)
 * is the width of the time axis when there is only one sample; `width` the drawing's width in CSS
 * pixels (the container's, so text is drawn at its real size; the SVG still scales with its
 * viewBox); `id` goes on the returned <figure>.
 * @param {{title?: string, series?: Array<{name: string, points: Array<Array<number | null>>}>, unit?: string,
 *   integer?: boolean, id?: string, span?: number, width?: number, caption?: any}} [options]
 */
export function lineChart({ title, series = [], unit = "", integer = false, id, span = 60, width, caption } = {}) {
  const WIDTH = Math.round(Math.min(900, Math.max(280, width || DEFAULT_WIDTH)));
  const HEIGHT = Math.round(Math.min(240, Math.max(190, WIDTH * 0.4)));
  const all = series.flatMap((one) => one.points.filter((p) => p[1] !== null && p[1] !== undefined));
  const summary = series.map((one) => `${one.name}: ${formatValue(latest(one.points), unit)}`).join(", ");

  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": all.length ? `${title}. Latest: ${summary}.` : `${title}: no data yet.`,
    preserveAspectRatio: "xMidYMid meet",
  });
  svg.appendChild(s("title", {}, all.length ? `${title} — latest ${summary}` : `${title} — no data yet`));

  const left = PAD.left;
  const right = WIDTH - PAD.right;
  const top = PAD.top;
  const bottom = HEIGHT - PAD.bottom;

  const times = series.flatMap((one) => one.points.map((p) => p[0]));
  let t0 = times.length ? Math.min(...times) : Date.now() / 1000 - span;
  let t1 = times.length ? Math.max(...times) : Date.now() / 1000;
  if (t1 - t0 < 1) {
    t0 = t1 - span;
  }
  const { max: yMax, step } = niceScale(all.length ? Math.max(...all.map((p) => p[1])) : 0, 4, integer);
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (right - left);
  const y = (v) => bottom - (v / yMax) * (bottom - top);

  // Horizontal grid lines with value labels.
  const grid = s("g", { class: "axis", "aria-hidden": "true" });
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const yy = y(v).toFixed(1);
    grid.appendChild(s("line", { class: v === 0 ? "" : "grid-line", x1: left, x2: right, y1: yy, y2: yy }));
    grid.appendChild(s("text", { x: left - 6, y: yy, "text-anchor": "end", "dominant-baseline": "middle" }, formatValue(v)));
  }
  // Time ticks: four intervals (two on a narrow chart), seconds shown only for short spans.
  const ticks = WIDTH < 420 ? 2 : 4;
  const withSeconds = t1 - t0 < 5 * 60;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    const xx = x(t).toFixed(1);
    grid.appendChild(s("line", { x1: xx, x2: xx, y1: bottom, y2: bottom + 4 }));
    const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
    grid.appendChild(s("text", { x: xx, y: bottom + 16, "text-anchor": anchor }, clock(t, withSeconds)));
  }
  svg.appendChild(grid);

  if (!all.length) {
    svg.appendChild(
      s("text", { class: "no-data", x: (left + right) / 2, y: (top + bottom) / 2, "text-anchor": "middle" }, "No data yet"),
    );
  }

  series.forEach((one, index) => {
    const cls = `s${(index % SERIES_CLASSES) + 1}`;
    const group = s("g", { "aria-hidden": "true" });
    const d = pathData(one.points, x, y);
    if (d) group.appendChild(s("path", { class: `series ${cls}`, d }));
    // A dot on the latest point (and on lone points, which a path cannot show).
    one.points.forEach(([t, v], i) => {
      if (v === null || v === undefined) return;
      const prev = one.points[i - 1];
      const next = one.points[i + 1];
      const lone = (!prev || prev[1] === null || prev[1] === undefined) && (!next || next[1] === null || next[1] === undefined);
      const last = i === one.points.length - 1;
      if (lone || last) {
        group.appendChild(
          s("circle", { class: `dot ${cls}`, cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 3.5 }, s("title", {}, `${one.name}: ${formatValue(v, unit)} at ${clock(t, true)}`)),
        );
      }
    });
    svg.appendChild(group);
  });

  const legend = series.length
    ? h(
        "ul",
        { class: "legend" },
        series.map((one, index) =>
          h(
            "li",
            {},
            h("span", { class: `swatch s${(index % SERIES_CLASSES) + 1}`, "aria-hidden": "true" }),
            `${one.name} `,
            h("span", { class: "muted" }, formatValue(latest(one.points), unit)),
          ),
        ),
      )
    : null;

  return h(
    "figure",
    { class: "chart", id },
    h(
      "figcaption",
      {},
      h("span", { class: "chart-title" }, unit ? `${title} (${unit})` : title),
      caption ? h("span", { class: "chart-latest" }, caption) : null,
    ),
    svg,
    legend,
  );
}
