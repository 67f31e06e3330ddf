// A flow definition drawn as a graph: triggers, the source, every step in order, the branches a
// route or fan-out feeds (each edge labelled with its condition), and the sinks. Laid out in
// columns from left to right, as records move; drawn as SVG built node by node (no markup from
// strings), so step ids and plugin names stay text. Given an execution, each node also shows its
// records in/out and is coloured by how its step went.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 184;
const NODE_H = 46;
const COL_GAP = 56;
const ROW_GAP = 18;
const PAD = 8;
const MAX_LABEL = 27;

function svg(tag, attrs, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) element.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

function cut(text) {
  const value = String(text);
  return value.length > MAX_LABEL ? value.slice(0, MAX_LABEL - 1) + "…" : value;
}

/** A short text for a route condition: `$.total gte 1000`, `all(…)`. */
export function conditionText(condition) {
  if (!condition || typeof condition !== "object") return "";
  if (condition.all) return `all(${condition.all.map(conditionText).join(", ")})`;
  if (condition.any) return `any(${condition.any.map(conditionText).join(", ")})`;
  if (condition.not) return `not ${conditionText(condition.not)}`;
  const value = condition.value === undefined ? "" : ` ${JSON.stringify(condition.value)}`;
  return `${condition.field} ${condition.op || "exists"}${value}`;
}

function triggerText(trigger) {
  if (trigger.type === "cron") return { title: "cron", sub: `${trigger.schedule} ${trigger.timezone || "UTC"}` };
  if (trigger.type === "webhook") return { title: "webhook", sub: "POST /v1/hooks/…" };
  return { title: trigger.type, sub: "" };
}

/**
 * Lays `flow` out: answers `{nodes, edges, width, height}`. A node is `{id, step, title, sub,
 * kind, plugin, col, row}`; an edge `{from, to, label}`. A branch fed from two places is drawn
 * once, with an edge from each.
 */
export function layout(flow) {
  const nodes = [];
  const edges = [];
  const placed = new Map();
  const add = (node) => {
    node.id = nodes.length;
    nodes.push(node);
    return node;
  };
  const link = (from, to, label) => {
    for (const source of from) edges.push({ from: source.node.id, to: to.id, label: source.label || label || "" });
  };

  const starts = [{ type: "manual" }, ...(flow.triggers || [])];
  starts.forEach((trigger, row) => {
    const text = trigger.type === "manual" ? { title: "manual run", sub: "POST …/run" } : triggerText(trigger);
    add({ title: text.title, sub: text.sub, kind: "trigger", col: 0, row });
  });
  let from = nodes.map((node) => ({ node }));
  let col = 1;
  if (flow.source) {
    const source = add({ step: flow.source.id, title: `${flow.source.id} (source)`, sub: flow.source.plugin, plugin: flow.source.plugin, kind: "source", col, row: 0 });
    link(from, source);
    from = [{ node: source }];
    col += 1;
  }

  // Places `pipeline` from column `col`, row `row`; answers the rows it takes and its entry nodes.
  function place(pipeline, col, row, from) {
    let entries = null;
    for (const step of pipeline.steps || []) {
      const node = add({ step: step.id, title: `${step.id} (${step.type})`, sub: step.plugin || "", plugin: step.plugin, kind: step.type, col, row });
      link(from, node);
      entries = entries || [node];
      from = [{ node }];
      col += 1;
      if (step.type === "route" || step.type === "fan-out") {
        const targets =
          step.type === "route"
            ? [...(step.routes || []).map((r) => ({ to: r.to, label: conditionText(r.when) })), ...(step.default ? [{ to: step.default, label: "default" }] : [])]
            : (step.to || []).map((to) => ({ to, label: "" }));
        let next = row;
        for (const target of targets) {
          const feed = [{ node, label: target.label }];
          if (placed.has(target.to)) {
            for (const entry of placed.get(target.to)) link(feed, entry);
            continue;
          }
          const branch = (flow.branches || {})[target.to] || {};
          placed.set(target.to, []);
          const result = place(branch, col, next, feed, target.to);
          placed.set(target.to, result.entries);
          next += result.rows;
        }
        return { rows: Math.max(1, next - row), entries };
      }
    }
    const sinks = (pipeline.sinks || []).map((sink, i) => {
      const node = add({ step: sink.id, title: `${sink.id} (sink)`, sub: sink.plugin, plugin: sink.plugin, kind: "sink", col, row: row + i });
      link(from, node);
      return node;
    });
    return { rows: Math.max(1, sinks.length), entries: entries || sinks };
  }
  const main = place(flow, col, 0, from);

  const cols = Math.max(...nodes.map((n) => n.col)) + 1;
  const rows = Math.max(starts.length, main.rows, ...nodes.map((n) => n.row + 1));
  return {
    nodes,
    edges,
    width: PAD * 2 + cols * NODE_W + (cols - 1) * COL_GAP,
    height: PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP,
  };
}

const x = (node) => PAD + node.col * (NODE_W + COL_GAP);
const y = (node) => PAD + node.row * (NODE_H + ROW_GAP);

/** The class a node gets from its step's report in an execution. */
function stateOf(report) {
  if (!report) return "";
  if (report.error) return "error";
  return report.records_out < report.records_in ? "warn" : "ok";
}

/**
 * The graph of `flow` as an element (`.graph`, scrolling sideways when wider than the page).
 * With `execution`, nodes show records in → out and are coloured by outcome; plugin nodes link to
 * their plugin's page.
 */
export function flowGraph(flow, { id, execution } = {}) {
  const { nodes, edges, width, height } = layout(flow);
  const reports = new Map();
  for (const report of (execution && execution.steps) || []) reports.set(report.step, report);

  const defs = svg(
    "defs",
    {},
    svg("marker", { id: "graph-arrow", viewBox: "0 0 8 8", refX: "8", refY: "4", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L8,4 L0,8 z", class: "arrow" })),
  );
  const drawn = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Flow ${flow.name}: ${nodes.length} nodes` }, defs);

  for (const edge of edges) {
    const a = nodes[edge.from];
    const b = nodes[edge.to];
    const x1 = x(a) + NODE_W;
    const y1 = y(a) + NODE_H / 2;
    const x2 = b.col > a.col ? x(b) : x(b) + NODE_W / 2;
    const y2 = b.col > a.col ? y(b) + NODE_H / 2 : y(b);
    const bend = Math.max(24, (x2 - x1) / 2);
    drawn.appendChild(svg("path", { class: "edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#graph-arrow)" }));
    if (edge.label) {
      const label = svg("text", { x: x1 + 6, y: y1 + (y2 >= y1 ? 14 : -6), class: "edge-label" }, cut(edge.label));
      label.appendChild(svg("title", {}, edge.label));
      drawn.appendChild(label);
    }
  }

  for (const node of nodes) {
    const report = node.step ? reports.get(node.step) : null;
    const state = node.kind === "trigger" ? "trigger" : stateOf(report);
    const sub = report ? `${report.records_in} → ${report.records_out}${report.error ? " · " + report.error.code : ""}` : node.sub;
    const group = svg(
      "g",
      { class: `node ${state}`, "data-step": node.step },
      svg("title", {}, [node.title, node.sub, report ? `records ${report.records_in} in, ${report.records_out} out` : ""].filter(Boolean).join(" — ")),
      svg("rect", { x: x(node), y: y(node), width: NODE_W, height: NODE_H, rx: 6 }),
      svg("text", { x: x(node) + 10, y: y(node) + 19, "font-weight": "600" }, cut(node.title)),
      svg("text", { x: x(node) + 10, y: y(node) + 36, class: "sub" }, cut(sub)),
    );
    drawn.appendChild(node.plugin ? svg("a", { href: `#/plugins/${encodeURIComponent(node.plugin)}`, "aria-label": `${node.title}: plugin ${node.plugin}` }, group) : group);
  }

  const box = document.createElement("div");
  box.className = "graph";
  if (id) box.id = id;
  box.appendChild(drawn);
  return box;
}
