// A flow definition drawn as a graph: triggers, the source, every step in order, the branches a
// route or fan-out feeds (each edge labelled with its condition), and the sinks. Laid out in
// columns from left to right, as records move; drawn as SVG built node by node (no markup from
// strings), so step ids and plugin names stay text. Given an execution, each node also shows its
// records in/out and is coloured by how its step went.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 184;
const NODE_H = 46;
const COL_GAP = 56;
/** The gap after a route's column, wide enough for its conditions. */
const LABEL_GAP = 168;
const ROW_GAP = 18;
const PAD = 8;
const MAX_LABEL = 27;
const MAX_EDGE_LABEL = 26;

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

function cut(text, most = MAX_LABEL) {
  const value = String(text);
  return value.length > most ? value.slice(0, most - 1) + "…" : value;
}

/** A short text for a route condition: `$.total gte 1000`, `all(…)`. */
export function conditionText(condition) {
  if (!condition || typeof condition !== "object") return "";
  if (condition.all) return `all(${condition.all.map(conditionText).join(", ")})`;
  if (condition.any) return `any(${condition.any.map(conditionText).join(", ")})`;
  if (condition.not) return `not ${conditionText(condition.not)}`;
  const value = condition.value === undefined || condition.value === null ? "" : ` ${JSON.stringify(condition.value)}`;
  return `${condition.field} ${condition.op || "exists"}${value}`;
}

function triggerText(trigger) {
  if (trigger.type === "cron") return { title: "cron", sub: `${trigger.schedule} ${trigger.timezone || "UTC"}` };
  if (trigger.type === "webhook") return { title: `webhook · ${trigger.scheme || "plugboard"}`, sub: "POST /v1/hooks/…" };
  return { title: trigger.type, sub: "" };
}

/** The branches a step sends records to, each with the label of its edge. */
function targetsOf(step) {
  if (step.type === "route") {
    const rules = (step.routes || []).map((r) => ({ to: r.to, label: conditionText(r.when) }));
    return step.default ? [...rules, { to: step.default, label: "default" }] : rules;
  }
  if (step.type === "fan-out") return (step.to || []).map((to) => ({ to, label: "" }));
  return [];
}

/**
 * The column each branch starts in: one past the deepest step that feeds it, so every edge into a
 * branch runs forward, however many places feed it (the server refuses cycles; the bound on
 * rounds keeps a bad definition from looping here).
 */
function branchColumns(flow, mainStart) {
  const branches = flow.branches || {};
  const start = new Map();
  const feed = (pipeline, col) => {
    (pipeline.steps || []).forEach((step, i) => {
      for (const target of targetsOf(step)) {
        if (!(target.to in branches)) continue;
        start.set(target.to, Math.max(start.get(target.to) ?? 0, col + i + 1));
      }
    });
  };
  for (let round = 0; round <= Object.keys(branches).length; round += 1) {
    const before = JSON.stringify([...start]);
    feed(flow, mainStart);
    for (const [name, col] of start) feed(branches[name], col);
    if (JSON.stringify([...start]) === before) break;
  }
  return start;
}

/**
 * Lays `flow` out: answers `{nodes, edges, columns}`. A node is `{id, step, title, sub, kind,
 * plugin, col, row}`; an edge `{from, to, label}`; `columns` the x of each column. A branch fed
 * from several places is drawn once, in the column after its deepest feeder, with an edge from each.
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
  const link = (from, to) => {
    for (const source of from) edges.push({ from: source.node.id, to: to.id, label: source.label || "" });
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
  const branchStart = branchColumns(flow, col);
  const labelled = new Set();

  // Places `pipeline` from column `col`, row `row`; answers the rows it takes and its entry nodes.
  function place(pipeline, col, row, from) {
    let entries = null;
    for (const step of pipeline.steps || []) {
      const node = add({ step: step.id, title: `${step.id} (${step.type})`, sub: step.plugin || "", plugin: step.plugin, kind: step.type, col, row });
      link(from, node);
      entries = entries || [node];
      from = [{ node }];
      const targets = targetsOf(step);
      if (targets.length === 0) {
        col += 1;
        continue;
      }
      if (targets.some((t) => t.label)) labelled.add(col);
      // A branch that starts further right goes on the upper row, so the straight edge to it
      // crosses only empty columns and not the chain of a branch placed below it.
      const byColumn = [...targets].sort((p, q) => (branchStart.get(q.to) ?? 0) - (branchStart.get(p.to) ?? 0));
      let next = row;
      for (const target of byColumn) {
        const feed = [{ node, label: target.label }];
        if (placed.has(target.to)) {
          for (const entry of placed.get(target.to)) link(feed, entry);
          continue;
        }
        placed.set(target.to, []);
        const branch = (flow.branches || {})[target.to] || {};
        const result = place(branch, branchStart.get(target.to) ?? col + 1, next, feed);
        placed.set(target.to, result.entries);
        next += result.rows;
      }
      return { rows: Math.max(1, next - row), entries };
    }
    const sinks = (pipeline.sinks || []).map((sink, i) => {
      const node = add({ step: sink.id, title: `${sink.id} (sink)`, sub: sink.plugin, plugin: sink.plugin, kind: "sink", col, row: row + i });
      link(from, node);
      return node;
    });
    return { rows: Math.max(1, sinks.length), entries: entries || sinks };
  }
  place(flow, col, 0, from);

  const count = Math.max(...nodes.map((n) => n.col)) + 1;
  const columns = [PAD];
  for (let c = 1; c < count; c += 1) columns.push(columns[c - 1] + NODE_W + (labelled.has(c - 1) ? LABEL_GAP : COL_GAP));
  const rows = Math.max(...nodes.map((n) => n.row + 1));
  return {
    nodes,
    edges,
    columns,
    width: columns[count - 1] + NODE_W + PAD,
    height: PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP,
  };
}

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
 * @param {import("./types.js").FlowDefinition} flow
 * @param {{id?: string, execution?: import("./types.js").Execution}} [options]
 */
export function flowGraph(flow, { id, execution } = {}) {
  const { nodes, edges, columns, width, height } = layout(flow);
  const x = (node) => columns[node.col];
  const reports = new Map();
  for (const report of (execution && execution.steps) || []) reports.set(report.step, report);

  const defs = svg(
    "defs",
    {},
    svg("marker", { id: "graph-arrow", viewBox: "0 0 8 8", refX: "8", refY: "4", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L8,4 L0,8 z", class: "arrow" })),
  );
  const drawn = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": `Flow ${flow.name}: ${nodes.length} nodes` }, defs);

  for (const edge of edges) {
    const a = nodes[edge.from];
    const b = nodes[edge.to];
    const x1 = x(a) + NODE_W;
    const y1 = y(a) + NODE_H / 2;
    const x2 = x(b);
    const y2 = y(b) + NODE_H / 2;
    const bend = Math.max(24, (x2 - x1) / 2);
    drawn.appendChild(svg("path", { class: "edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#graph-arrow)" }));
    if (edge.label) {
      // At the middle of its own edge, so the conditions of one route's targets never overlap.
      const label = svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "edge-label", "text-anchor": "middle" }, cut(edge.label, MAX_EDGE_LABEL));
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
