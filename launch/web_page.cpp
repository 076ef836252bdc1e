#include "launch/web_page.h"

namespace rwkv::launch {

// Element ids and classes the headless-browser test reads: #job, #state,
// #summary, #loss-chart with circle.loss-point[data-step][data-value],
// #ranks tbody tr[data-rank][data-state], #error, body[data-ready="1"]
// after the first full refresh. Text goes in with textContent only, so no
// value from a rank can inject markup.
const char* web_page_html() {
  return R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rwkv-dist controller</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .4em 0; }
  #summary { margin-bottom: 1em; white-space: pre; font-family: ui-monospace, monospace; }
  #error { color: #b00; font-family: ui-monospace, monospace; white-space: pre-wrap; }
  svg { border: 1px solid #ccc; background: #fcfcfc; }
  .loss-line { fill: none; stroke: #1f77b4; stroke-width: 1.5; }
  .loss-point { fill: #1f77b4; }
  .axis { stroke: #888; stroke-width: 1; }
  .label { font-size: 11px; fill: #555; }
  table { border-collapse: collapse; margin-top: 1em; }
  th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
  tr.alive td.state { color: #080; }
  tr.failed td.state { color: #b00; font-weight: bold; }
  tr.pending td.state, tr.finished td.state { color: #777; }
</style>
</head>
<body>
<h1>rwkv-dist: <span id="job">(no job yet)</span> <span id="state"></span></h1>
<div id="summary"></div>
<svg id="loss-chart" width="760" height="320" viewBox="0 0 760 320" role="img" aria-label="training loss"></svg>
<table id="ranks">
  <thead><tr><th>rank</th><th>host</th><th>pid</th><th>state</th><th>step</th><th>heartbeat</th><th>reason</th></tr></thead>
  <tbody></tbody>
</table>
<div id="error"></div>
<script>
"use strict";
const params = new URLSearchParams(window.location.search);
const token = params.get("token") || "";
const job = params.get("job") || "";
const SVG = "http://www.w3.org/2000/svg";

async function getJson(path) {
  const sep = path.includes("?") ? "&" : "?";
  const response = await fetch(path + sep + "job=" + encodeURIComponent(job),
                               { headers: { "Authorization": "Bearer " + token }, cache: "no-store" });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status + ": " + (await response.text()));
  return response.json();
}

function svgElement(name, attributes) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, String(v));
  return e;
}

function formatDuration(s) {
  if (s === null || s === undefined) return "unknown";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h > 0 ? h + "h " : "") + (h > 0 || m > 0 ? m + "m " : "") + sec + "s";
}

function drawLoss(points) {
  const svg = document.getElementById("loss-chart");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 760, H = 320, left = 60, right = 20, top = 20, bottom = 40;
  svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }));
  svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: top, x2: left, y2: H - bottom }));
  if (points.length === 0) {
    const t = svgElement("text", { class: "label", x: left + 10, y: top + 20 });
    t.textContent = "no loss reported yet";
    svg.appendChild(t);
    return;
  }
  const steps = points.map(p => p.step), values = points.map(p => p.value);
  const x0 = Math.min(...steps), x1 = Math.max(...steps);
  let y0 = Math.min(...values), y1 = Math.max(...values);
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const sx = s => left + (x1 === x0 ? 0.5 : (s - x0) / (x1 - x0)) * (W - left - right);
  const sy = v => top + (1 - (v - y0) / (y1 - y0)) * (H - top - bottom);
  svg.appendChild(svgElement("polyline", { class: "loss-line",
      points: points.map(p => sx(p.step).toFixed(1) + "," + sy(p.value).toFixed(1)).join(" ") }));
  for (const p of points) {
    const c = svgElement("circle", { class: "loss-point", cx: sx(p.step).toFixed(1), cy: sy(p.value).toFixed(1), r: 2.5,
                                     "data-step": p.step, "data-value": p.value });
    const title = svgElement("title", {});
    title.textContent = "step " + p.step + ": loss " + p.value.toFixed(4);
    c.appendChild(title);
    svg.appendChild(c);
  }
  const labels = [[x0, left, H - bottom + 16], [x1, W - right - 30, H - bottom + 16]];
  for (const [text, x, y] of labels) {
    const t = svgElement("text", { class: "label", x: x, y: y });
    t.textContent = "step " + text;
    svg.appendChild(t);
  }
  for (const [v, y] of [[y1, top + 4], [y0, H - bottom]]) {
    const t = svgElement("text", { class: "label", x: 4, y: y });
    t.textContent = v.toFixed(3);
    svg.appendChild(t);
  }
}

function drawRanks(ranks) {
  const body = document.querySelector("#ranks tbody");
  while (body.firstChild) body.removeChild(body.firstChild);
  for (const r of ranks) {
    const tr = document.createElement("tr");
    // A rank that finished with an error is shown like a failed one.
    tr.className = r.state + (r.reason.startsWith("failed") ? " failed" : "");
    tr.dataset.rank = r.rank;
    tr.dataset.state = r.state;
    const age = r.heartbeat_age_s === null ? "-" : r.heartbeat_age_s.toFixed(1) + " s ago";
    for (const [cls, text] of [["rank", r.rank], ["host", r.host], ["pid", r.pid], ["state", r.state],
                               ["step", r.step], ["heartbeat", age], ["reason", r.reason]]) {
      const td = document.createElement("td");
      td.className = cls;
      td.textContent = String(text);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

async function refresh() {
  try {
    const s = await getJson("/api/status");
    document.getElementById("job").textContent = s.job;
    document.getElementById("state").textContent = "(" + s.state + ", generation " + s.generation + ")";
    const c = s.last_committed;
    document.getElementById("summary").textContent =
        "step       " + s.step + "/" + s.total_steps + "\n" +
        "loss       " + (s.loss === null ? "-" : s.loss.toFixed(4)) + "\n" +
        "tokens/s   " + Math.round(s.tokens_per_s) + "\n" +
        "ETA        " + formatDuration(s.eta_s) + "\n" +
        "ranks      " + s.ranks_alive + "/" + s.world_size + " alive\n" +
        "checkpoint " + (c === null ? "none committed" : "step " + c.step + " (" + c.dir + ")") +
        (s.reason ? "\nreason     " + s.reason : "");
    drawRanks(s.ranks);
    const m = await getJson("/api/metrics?name=loss&limit=5000");
    drawLoss(m.points.filter(p => p.name === "loss"));
    document.getElementById("error").textContent = "";
    document.body.dataset.ready = "1";
  } catch (e) {
    document.getElementById("error").textContent = String(e.message || e);
  }
}

refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
)html";
}

}  // namespace rwkv::launch
