// The Graph, Attention and Runs views of `minidl serve` (served as /views.js after page.html's script, whose
// $, el and api it uses). ?view=graph|attention|runs opens a view on load; there ?expr=... or ?model=N&text=...
// (with &backward=1) draws a graph, ?text=... shows attention: for headless screenshots (tests/web).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const svgEl = (tag, attributes = {}, ...children) => {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
};
const CURVES = {train: "#1b9e77", validation: "#d95f02", test: "#7570b3"};    // keep in step with tests/web
const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
let info = null, runsTimer = null, runsShown = "";

// --- tabs ---
function showView(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.view === name);
    $(`view-${button.dataset.view}`).hidden = button.dataset.view !== name;
  }
  clearInterval(runsTimer);
  if (name === "runs") {
    refreshRuns();
    runsTimer = setInterval(refreshRuns, 3000);   // a run still training shows its new evaluations
  }
}

// --- Graph ---
async function drawGraph(backward) {
  const model = $("graph-model").value;
  const params = model === "" ? {expr: $("expr").value}
    : {model, text: $("graph-text").value, label: $("graph-label").value};
  params.backward = backward ? 1 : 0;
  try {
    const answer = await api("/api/graph", params);
    const svg = new DOMParser().parseFromString(answer.svg, "image/svg+xml").documentElement;
    $("graph-out").replaceChildren(document.importNode(svg, true));
    const extra = answer.prediction ? ` · prediction ${answer.prediction}, loss ${Number(answer.loss).toFixed(4)}`
      : ` · output ${JSON.stringify(answer.output.value)}`;
    $("graph-note").textContent = `${answer.note}${extra} · ${answer.summary.num_ops} ops (${answer.mode})`;
    $("graph-error").textContent = "";
  } catch (e) {
    $("graph-error").textContent = e.message;
    $("graph-out").replaceChildren();
    $("graph-note").textContent = "";
  }
}

function fillGraphChoices() {
  $("graph-functions").textContent = "the functions " + info.graph.functions.join(", ") +
    ` (at most ${info.graph.max_chars} characters)`;
  info.classifiers.forEach((c, i) => $("graph-model").append(el("option", {value: i}, `${i}: ${c.name} (${c.path})`)));
  $("graph-model").onchange = () => {
    const chosen = info.classifiers[$("graph-model").value];
    $("graph-label").replaceChildren(el("option", {value: ""}, "(the prediction)"),
      ...(chosen ? chosen.labels.map((label) => el("option", {value: label}, label)) : []));
  };
}

// --- Attention ---
async function showAttention() {
  try {
    const answer = await api("/api/attention", {text: $("attention-text").value});
    $("attention-out").replaceChildren(...answer.models.map(attentionOf));
    $("attention-error").textContent = "";
  } catch (e) {
    $("attention-error").textContent = e.message;
    $("attention-out").replaceChildren();
  }
}

function attentionOf(model) {
  const title = el("h2", {}, `${model.name} `, el("span", {className: "ms"}, model.path),
    ` · prediction ${model.prediction} (p = ${model.probabilities[model.prediction].toFixed(3)})`);
  if (model.kind === "window") {
    return el("div", {className: "attention"}, title, el("h3", {}, `each word over its window of ±${model.radius}`),
      windowTable(model));
  }
  return el("div", {className: "attention"}, title, ...model.layers.map((heads, l) => el("div", {className: "layer"},
    el("h3", {}, `layer ${l + 1}`), ...heads.map((map, h) => heatTable(model.words, map, `head ${h + 1}`)))));
}

// colour of a weight, ∝ weight / the largest one of its map
const shade = (w, largest) => `color-mix(in srgb, var(--heat) ${(100 * w / largest).toFixed(1)}%, white)`;
const largestOf = (rows) => Math.max(1e-12, ...rows.flat().filter((w) => w !== null));

function heatTable(words, map, caption) {
  const largest = largestOf(map);
  return el("table", {className: "heat"}, el("caption", {}, caption),
    el("tr", {}, el("th"), ...words.map((w) => el("th", {className: "column"}, w))),
    ...map.map((row, i) => el("tr", {}, el("th", {className: "row"}, words[i]),
      ...row.map((w, j) => el("td", {className: "cell", title: `${words[i]} → ${words[j]}: ${w.toFixed(3)}`,
        style: `background:${shade(w, largest)}`})))));
}

function windowTable(model) {
  const r = model.radius, largest = largestOf(model.weights);
  const offsets = model.weights[0].map((_, k) => k - r);
  return el("table", {className: "heat"},
    el("tr", {}, el("th"), ...offsets.map((o) => el("th", {}, o > 0 ? `+${o}` : `${o}`))),
    ...model.weights.map((row, t) => el("tr", {}, el("th", {className: "row"}, model.words[t]),
      ...row.map((w, k) => w === null ? el("td", {className: "window"})
        : el("td", {className: "cell window", title: `${model.words[t]} → ${model.words[t + k - r]}: ${w.toFixed(3)}`,
          style: `background:${shade(w, largest)}; color:${w > 0.6 * largest ? "#fff" : "#222"}`},
        model.words[t + k - r])))));
}

// --- Runs ---
async function refreshRuns() {
  try {
    const listing = await api("/api/runs", {});
    $("runs-error").textContent = "";
    $("runs-status").textContent = `${listing.root} · ${listing.runs.length} runs, ${listing.sweeps.length} sweeps, ` +
      `${listing.plots.length} plots · read at ${new Date().toLocaleTimeString()}`;
    const text = JSON.stringify(listing);
    if (text === runsShown) return;                  // unchanged: keep the page (and the images) as they are
    runsShown = text;
    $("runs-out").replaceChildren(el("div", {className: "items"}, ...listing.runs.map(runOf),
      ...listing.sweeps.map(sweepOf)), plotsOf(listing.plots), skippedOf(listing.skipped));
  } catch (e) {
    $("runs-error").textContent = e.message;
    clearInterval(runsTimer);
  }
}

function runOf(run) {
  const h = run.history, state = run.finished ? "finished" : "from last.npz: training, or stopped before its results";
  const series = (metric) => [["train", `train_${metric}`], ["validation", metric], ["test", `test_${metric}`]]
    .map(([name, key]) => ({name, colour: CURVES[name], points: h.filter((e) => e[key] != null).map((e) => [e.epoch, e[key]])}))
    .filter((s) => s.points.length);
  const test = run.test && run.test.accuracy != null ? ` · test accuracy ${run.test.accuracy.toFixed(4)}` : "";
  return el("div", {className: "run"}, el("h3", {}, `${run.path} · ${run.label}`),
    el("div", {className: "hint"}, `${h.length} evaluation${h.length === 1 ? "" : "s"} · ${state}${test}`),
    el("div", {className: "charts"}, chart("loss", series("loss")), chart("accuracy", series("accuracy"))));
}

function sweepOf(sweep) {
  const done = sweep.jobs.filter((j) => !j.error).length;
  const jobs = sweep.jobs.filter((j) => !j.error && j.history.length);
  // a job with no validation split (--set validation=0) chose its best on test: its line is the test accuracy
  const onTest = jobs.filter((job) => job.history.some((e) => e.accuracy == null && e.test_accuracy != null));
  const lines = jobs.map((job, i) => ({name: job.label, colour: PALETTE[i % PALETTE.length],
    points: job.history.map((e) => [e.epoch, e.accuracy ?? e.test_accuracy]).filter(([, y]) => y != null)}));
  const measured = !onTest.length ? "validation" : onTest.length === jobs.length ? "test" : "val./test";
  // one seed has no std: its value alone, as minidl plot's table shows it
  const metric = (row, m) => row[m] == null ? ""
    : row[m].toFixed(3) + (row.seeds > 1 ? ` ± ${row[`${m}_std`].toFixed(3)}` : "");
  // the settings that vary (two sweeps of one file with --set lr=...), as minidl plot's table writes them
  const withSettings = sweep.summary.some((row) => row.settings_label);
  const columns = [["model", (row) => row.model], ...(withSettings ? [["settings", (row) => row.settings_label]] : []),
    ["hidden", (row) => JSON.stringify(row.hidden)], ["seeds", (row) => row.seeds],
    ["test accuracy", (row) => metric(row, "accuracy")], ["F1", (row) => metric(row, "f1")],
    ["AUC", (row) => metric(row, "auc")]];
  return el("div", {className: "sweep"},
    el("h3", {}, `${sweep.path} · sweep of ${sweep.jobs.length} jobs (${done} done, ${sweep.jobs.length - done} failed)`),
    el("div", {className: "charts"}, el("table", {className: "summary"},
      el("tr", {}, ...columns.map(([name]) => el("th", {}, name))),
      ...sweep.summary.map((row) => el("tr", {}, ...columns.map(([, cell]) => el("td", {}, cell(row)))))),
    chart(`${measured} accuracy, one line a job`, lines)));
}

function plotsOf(all) {
  const paths = new Set(all.map((p) => p.path));        // a plot saved as .png and .svg is shown once, as SVG
  const plots = all.filter((p) => !(p.path.endsWith(".png") && paths.has(p.path.slice(0, -4) + ".svg")));
  return el("div", {className: "plots"}, ...(plots.length ? [el("h3", {}, "plots")] : []),
    ...plots.map((p) => el("img", {src: `/api/runs/file?${new URLSearchParams({path: p.path, v: p.version})}`,
      alt: p.path, title: p.path})));
}

function skippedOf(skipped) {
  if (!skipped.length) return el("div");
  return el("details", {className: "skipped"}, el("summary", {},
    `${skipped.length} ${skipped.length === 1 ? "file or line" : "files or lines"} not shown`),
    ...skipped.map((s) => el("div", {className: "hint"}, `${s.path}: ${s.why}`)));
}

// A line chart (SVG) of series [{name, colour, points: [[x, y]]}] against the epoch.
function chart(title, series, width = 260, height = 170) {
  const points = series.flatMap((s) => s.points), pad = {left: 46, right: 10, top: 22, bottom: 30};
  const svg = svgEl("svg", {width, height, class: "chart"}, svgEl("text", {x: pad.left, y: 14, "font-size": 12}, title));
  if (!points.length) return svg;
  // one x or one y (a run after its first evaluation, a sweep of one epoch): a range around it, so that the
  // points sit in the middle and the two ends get labels of their own
  const range = (values, margin) => {
    const [low, high] = [Math.min(...values), Math.max(...values)];
    return high > low ? [low, high] : [low - margin(low), high + margin(low)];
  };
  const [x0, x1] = range(points.map((p) => p[0]), () => 0.5);                        // half an epoch
  const [y0, y1] = range(points.map((p) => p[1]), (y) => Math.max(0.05 * Math.abs(y), 0.01));
  const sx = (x) => pad.left + (x - x0) / (x1 - x0) * (width - pad.left - pad.right);
  const sy = (y) => height - pad.bottom - (y - y0) / (y1 - y0) * (height - pad.top - pad.bottom);
  const label = (x, y, text, anchor) => svgEl("text", {x, y, "font-size": 10, "text-anchor": anchor, fill: "#555"}, text);
  svg.append(svgEl("rect", {x: pad.left, y: pad.top, width: width - pad.left - pad.right,
    height: height - pad.top - pad.bottom, fill: "none", stroke: "#ccc"}),
  label(pad.left - 4, sy(y1) + 4, y1.toPrecision(3), "end"), label(pad.left - 4, sy(y0), y0.toPrecision(3), "end"),
  label(sx(x0), height - 16, x0.toFixed(2), "start"), label(sx(x1), height - 16, x1.toFixed(2), "end"),
  label((pad.left + width) / 2, height - 4, "epoch", "middle"));
  series.forEach((s, i) => {
    const line = svgEl("polyline", {fill: "none", stroke: s.colour, "stroke-width": 2, class: "series",
      points: s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}, svgEl("title", {}, s.name));
    // each point's tooltip names its line: the legend stops at 4 lines, and a line of one point cannot be hovered
    svg.append(line, ...s.points.map(([x, y]) => svgEl("circle", {cx: sx(x), cy: sy(y), r: 2.5, fill: s.colour},
      svgEl("title", {}, `${s.name}: epoch ${Number(x.toFixed(2))}, ${y.toPrecision(3)}`))));
    if (series.length <= 4) svg.append(svgEl("text", {x: width - pad.right - 4, y: pad.top + 12 + 12 * i,
      "font-size": 10, "text-anchor": "end", fill: s.colour}, s.name));
  });
  return svg;
}

// --- start ---
async function startViews() {
  for (const button of document.querySelectorAll("#tabs button")) button.onclick = () => showView(button.dataset.view);
  $("forward").onclick = () => drawGraph(false);
  $("backward").onclick = () => drawGraph(true);
  $("attend").onclick = showAttention;
  try {
    info = await api("/api/info", {});
  } catch (e) {
    return;                                          // page.html's script shows the error
  }
  fillGraphChoices();
  if (!info.attention.length) {
    $("attention-error").textContent = "no transformer or window-attention model is loaded: start the server with " +
      "minidl serve --classifier runs/NAME/best.npz of one (minidl train --model transformer --out runs/NAME)";
    $("attend").disabled = true;
  }
  if (!info.runs) $("runs-error").textContent = "no runs folder: start the server with minidl serve --runs runs " +
    "(the folder minidl train --out and minidl sweep --results write into)";
  const query = new URLSearchParams(location.search), view = query.get("view");
  if (!["graph", "attention", "runs"].includes(view)) return;
  showView(view);
  if (view === "graph" && (query.has("expr") || query.has("model"))) {
    if (query.has("expr")) $("expr").value = query.get("expr");
    if (query.has("model")) { $("graph-model").value = query.get("model"); $("graph-model").onchange(); }
    if (query.has("text")) $("graph-text").value = query.get("text");
    await drawGraph(query.get("backward") === "1");
  }
  if (view === "attention" && query.has("text") && info.attention.length) {
    $("attention-text").value = query.get("text");
    await showAttention();
  }
}
startViews();
