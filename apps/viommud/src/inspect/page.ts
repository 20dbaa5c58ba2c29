// The inspection page: one HTML document with its CSS and script inline (nothing is fetched from
// anywhere but this server's /api). It listens to /api/events and keeps one card per client: the
// counters and rates, and the object graph drawn as SVG at the positions the server's layered
// layout computed (layout.ts). A graph is redrawn only when its nodes or edges change; otherwise
// just the numbers and the per-node detail lines are updated, so the page stays still while live.
//
// The script is plain ES2020 in a String.raw literal: no template literals inside it.
export const PAGE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>viommud — live iommufd objects</title>
<style>
  :root { --fg: #1d232b; --muted: #5b6672; --line: #8b96a3; --bg: #f6f7f9; --card: #fff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; background: #1d232b; color: #fff; }
  header h1 { font-size: 18px; margin: 0; }
  header .muted { color: #b8c2cc; }
  #status.live::before { content: "●"; color: #4ade80; margin-right: 6px; }
  #status.down::before { content: "●"; color: #f87171; margin-right: 6px; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  #empty { padding: 0 20px; color: var(--muted); }
  section.client { background: var(--card); border: 1px solid #dde2e7; border-radius: 8px; padding: 12px 16px; }
  section.client h2 { font-size: 16px; margin: 0 8px 0 0; display: inline; }
  .peer { color: var(--muted); }
  dl.stats { display: flex; flex-wrap: wrap; gap: 6px 20px; margin: 10px 0; }
  dl.stats div { display: flex; flex-direction: column; min-width: 84px; }
  dl.stats dt { color: var(--muted); font-size: 12px; }
  dl.stats dd { margin: 0; font-size: 18px; font-variant-numeric: tabular-nums; }
  .nograph { color: var(--muted); font-style: italic; }
  .graph-wrap { overflow-x: auto; }
  svg.graph text { font-family: inherit; }
  svg.graph .label { font-size: 13px; font-weight: 600; fill: #111; }
  svg.graph .detail { font-size: 11px; fill: #333; }
  svg.graph .rel { font-size: 10px; fill: var(--muted); }
  svg.graph path.edge { fill: none; stroke: var(--line); stroke-width: 1.4; }
  details { margin-top: 6px; color: var(--muted); }
  table.ioctls { border-collapse: collapse; margin-top: 4px; color: var(--fg); }
  table.ioctls td { padding: 1px 12px 1px 0; font-variant-numeric: tabular-nums; }
  table.ioctls td:last-child { text-align: right; }
</style>
</head>
<body>
<header><h1>viommud</h1><span id="status" class="down">connecting</span><span id="summary" class="muted"></span></header>
<p id="empty" hidden>No clients connected.</p>
<main id="clients"></main>
<script>
"use strict";
var SVGNS = "http://www.w3.org/2000/svg";
var COLORS = {
  IOAS: "#dbeafe", HWPT_PAGING: "#e0e7ff", HWPT_NESTED: "#ede9fe", VIOMMU: "#fde68a",
  VDEVICE: "#dcfce7", HW_QUEUE: "#fee2e2", VEVENTQ: "#fce7f3", FAULT: "#ffedd5",
  DEVICE: "#e5e7eb", ACCESS: "#f1f5f9", SELFTEST: "#f1f5f9"
};
var cards = new Map();

function el(tag, attrs, text) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs, text) {
  var e = document.createElementNS(SVGNS, tag);
  for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function rate(n) { return n >= 100 ? n.toFixed(0) : n.toFixed(1); }

var STATS = [
  ["objects", "objects", function (c) { return String(c.objects); }],
  ["ioctls", "ioctls", function (c) { return String(c.ioctls); }],
  ["ioctl-rate", "ioctls/s", function (c) { return rate(c.rates.ioctlsPerSec); }],
  ["invalidations", "invalidations", function (c) { return String(c.counters.invalidations); }],
  ["invalidation-rate", "invalidations/s", function (c) { return rate(c.rates.invalidationsPerSec); }],
  ["events", "events", function (c) { return String(c.counters.events); }],
  ["event-rate", "events/s", function (c) { return rate(c.rates.eventsPerSec); }],
  ["queue-depth", "queue depth", function (c) { return String(c.queueDepth); }],
  ["lost", "lost events", function (c) { return String(c.counters.lostEvents); }]
];

function newCard(c) {
  var sec = el("section", { "class": "client", "data-client": String(c.id), id: "client-" + c.id });
  var head = el("div");
  head.appendChild(el("h2", {}, "client " + c.id + (c.name ? " \u201c" + c.name + "\u201d" : "")));
  var peer = el("span", { "class": "peer" });
  head.appendChild(peer);
  sec.appendChild(head);
  var dl = el("dl", { "class": "stats" });
  var values = {};
  STATS.forEach(function (s) {
    var d = el("div");
    d.appendChild(el("dt", {}, s[1]));
    values[s[0]] = d.appendChild(el("dd", { "data-stat": s[0] }));
    dl.appendChild(d);
  });
  sec.appendChild(dl);
  var wrap = sec.appendChild(el("div", { "class": "graph-wrap" }));
  var det = el("details");
  det.appendChild(el("summary", {}, "ioctls by type"));
  var table = det.appendChild(el("table", { "class": "ioctls" }));
  sec.appendChild(det);
  return { sec: sec, peer: peer, values: values, wrap: wrap, table: table, version: null, details: new Map() };
}

function signature(c) {
  return c.graphAvailable + "|" + c.nodes.map(function (n) { return n.key + ":" + n.type; }).join(",") + "|" +
    c.edges.map(function (e) { return e.from + ">" + e.to + ":" + e.relation; }).join(",");
}

// A smooth line through the layout's points: vertical tangents at each point, so it leaves and
// enters boxes straight and passes the rows it crosses in its own slot. Same-row edges arc below.
function edgePath(pts) {
  var p0 = pts[0], d = "M" + p0.x + "," + p0.y;
  if (pts.length === 2 && pts[1].y === p0.y) {
    var q = pts[1];
    return { d: d + " C" + p0.x + "," + (p0.y + 40) + " " + q.x + "," + (q.y + 40) + " " + q.x + "," + q.y, mx: (p0.x + q.x) / 2, my: p0.y + 30 };
  }
  for (var i = 0; i + 1 < pts.length; i++) {
    var a = pts[i], b = pts[i + 1], m = (a.y + b.y) / 2;
    d += " C" + a.x + "," + m + " " + b.x + "," + m + " " + b.x + "," + b.y;
  }
  // The label sits in the middle gap the line crosses.
  var k = Math.floor((pts.length - 1) / 2 / 2) * 2, s0 = pts[k], s1 = pts[k + 1];
  return { d: d, mx: (s0.x + s1.x) / 2, my: (s0.y + s1.y) / 2 };
}

function drawGraph(card, c) {
  card.wrap.textContent = "";
  card.details = new Map();
  if (!c.graphAvailable) { card.wrap.appendChild(el("p", { "class": "nograph" }, c.reason || "no object graph")); return; }
  if (c.nodes.length === 0) { card.wrap.appendChild(el("p", { "class": "nograph" }, "no objects yet")); return; }
  var L = c.layout, w = L.nodeWidth, h = L.nodeHeight;
  var s = svg("svg", { "class": "graph", width: L.width, height: L.height + 24, viewBox: "0 0 " + L.width + " " + (L.height + 24), role: "img" });
  var mid = "arrow-" + c.id;
  var defs = s.appendChild(svg("defs"));
  var marker = defs.appendChild(svg("marker", { id: mid, viewBox: "0 0 8 8", refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" }));
  marker.appendChild(svg("path", { d: "M0,0 L8,4 L0,8 z", fill: "#8b96a3" }));
  c.edges.forEach(function (e, i) {
    var pts = L.edges[i];
    if (!pts || pts.length < 2) return;
    var p = edgePath(pts);
    s.appendChild(svg("path", { "class": "edge", d: p.d, "marker-end": "url(#" + mid + ")", "data-from": e.from, "data-to": e.to, "data-relation": e.relation }));
    s.appendChild(svg("text", { "class": "rel", x: p.mx + 4, y: p.my - 2 }, e.relation));
  });
  c.nodes.forEach(function (n) {
    var b = L.boxes[n.key];
    var g = s.appendChild(svg("g", { "class": "node", transform: "translate(" + b.x + "," + b.y + ")", "data-key": n.key, "data-type": n.type, "data-id": String(n.id) }));
    g.appendChild(svg("title", {}, n.label + "\n" + Object.keys(n.attrs).map(function (k) { return k + ": " + n.attrs[k]; }).join("\n")));
    g.appendChild(svg("rect", { width: w, height: h, rx: 6, fill: COLORS[n.type] || "#fff", stroke: "#6b7785" }));
    g.appendChild(svg("text", { "class": "label", x: 8, y: 17 }, n.label));
    card.details.set(n.key, g.appendChild(svg("text", { "class": "detail", x: 8, y: 34, "data-detail-for": n.key }, n.detail)));
  });
  card.wrap.appendChild(s);
}

function update(c) {
  var card = cards.get(c.id);
  if (!card) { card = newCard(c); cards.set(c.id, card); insertCard(card, c.id); }
  var p = c.peer ? "pid " + c.peer.pid + ", uid " + c.peer.uid + ", gid " + c.peer.gid : "peer unknown";
  card.peer.textContent = p + " \u00b7 up " + (c.uptimeMs / 1000).toFixed(0) + " s";
  STATS.forEach(function (s) { card.values[s[0]].textContent = s[2](c); });
  var v = signature(c);
  if (v !== card.version) { drawGraph(card, c); card.version = v; }
  else c.nodes.forEach(function (n) { var t = card.details.get(n.key); if (t && t.textContent !== n.detail) t.textContent = n.detail; });
  card.table.textContent = "";
  Object.keys(c.counters.ioctlsByType).forEach(function (k) {
    var tr = card.table.appendChild(el("tr"));
    tr.appendChild(el("td", {}, k));
    tr.appendChild(el("td", {}, String(c.counters.ioctlsByType[k])));
  });
}

function insertCard(card, id) {
  var main = document.getElementById("clients");
  var after = null;
  cards.forEach(function (other, oid) { if (oid > id && (!after || oid < Number(after.dataset.client))) after = other.sec; });
  main.insertBefore(card.sec, after);
}

function render(msg) {
  var live = new Set();
  msg.clients.forEach(function (c) { live.add(c.id); update(c); });
  cards.forEach(function (card, id) { if (!live.has(id)) { card.sec.remove(); cards.delete(id); } });
  document.getElementById("empty").hidden = msg.clients.length > 0;
  document.getElementById("summary").textContent = "backend " + msg.backend + " \u00b7 " + msg.clients.length + " client" + (msg.clients.length === 1 ? "" : "s");
}

// Not "status": a top-level var of that name would be window.status, a string.
var statusEl = document.getElementById("status");
var es = new EventSource("/api/events");
es.addEventListener("update", function (ev) { render(JSON.parse(ev.data)); statusEl.textContent = "live"; statusEl.className = "live"; });
es.onerror = function () { statusEl.textContent = "reconnecting"; statusEl.className = "down"; };
</script>
</body>
</html>
`;
