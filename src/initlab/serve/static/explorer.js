// The explorer's page: sends the controls' values to the server, draws the frames it streams.
// Every value is checked by the server; this script only shows what it accepts or refuses.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("controls");
const CLASS_COLOURS = [[245, 147, 34], [8, 119, 189]];  // label 0 orange, label 1 blue
let socket = null;
let fields = [];          // the settings' names, from the server
let experiment = null;    // the last "start" message: settings, points, extent
let lastFrame = null;
let compilingNotice = false;  // the "compiling" note is shown until training has run
let history = [];         // one point per frame: {epoch, train_loss: [min, median, max], ...}
let costChart = null, accuracyChart = null, depthChart = null;
const frameTimes = [];    // arrival times of the last second's frames, for the page's own fps

// --- the connection ---------------------------------------------------------------------------
function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws`);
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = () => {
    setStatus("disconnected");
    showMessage("The connection to the server closed: is `initlab serve` still running? Reload the page once it is.");
  };
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function receive(message) {
  if (message.type === "options") return setUp(message);
  if (message.type === "start") return start(message);
  if (message.type === "frame") return draw(message);
  if (message.type === "error") return showMessage(message.message, true);
}

// --- controls and the URL ---------------------------------------------------------------------
function setUp(message) {
  fields = message.fields;
  fillSelect("activation", message.activations);
  fillSelect("scheme", message.schemes);
  fillSelect("optimizer", message.optimizers);
  const query = new URLSearchParams(location.search);
  for (const name of fields) {
    const value = query.has(name) ? query.get(name) : message.defaults[name];
    form.elements[name].value = value === null || value === undefined ? "" : value;
  }
  sendSettings();
}

function fillSelect(name, options) {
  const select = form.elements[name];
  select.replaceChildren(...options.map((option) => new Option(option, option)));
}

function settingsFromControls() {
  const settings = {};
  for (const name of fields) settings[name] = form.elements[name].value;
  return settings;
}

function sendSettings() {
  send({type: "settings", settings: settingsFromControls()});
}

function start(message) {
  experiment = message;
  history = [];
  clearMessage();
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(message.settings)) {
    if (value !== null && value !== "") query.set(name, value);
    form.elements[name].value = value === null ? "" : value;
  }
  replaceUrl("?" + query.toString());
  drawTheory(message.theory);
  compilingNotice = message.compiling;
  if (compilingNotice) {
    showMessage("The first training compiles its kernel for this computer: once, a minute or " +
                "so; later experiments, and later runs of initlab, start at once.", false);
  }
}

function replaceUrl(search) {
  window.history.replaceState(null, "", location.pathname + search);
}

// --- messages ---------------------------------------------------------------------------------
function showMessage(text, refused) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
  for (const element of form.elements) element.removeAttribute("aria-invalid");
  // The server's message starts with the field's name: mark that control.
  const name = refused ? text.split(/[\s:[]/)[0] : null;
  if (name && form.elements[name]) form.elements[name].setAttribute("aria-invalid", "true");
}

function clearMessage() {
  $("message").hidden = true;
  $("message").textContent = "";
  for (const element of form.elements) element.removeAttribute("aria-invalid");
}

function setStatus(text) { $("status").textContent = text; }

// --- a frame ----------------------------------------------------------------------------------
const fixed = (value, digits) => (value === null || value === undefined ? "–" : value.toFixed(digits));

function draw(frame) {
  lastFrame = frame;
  if (compilingNotice && frame.epoch > 0) {
    compilingNotice = false;
    clearMessage();
  }
  const now = performance.now();
  frameTimes.push(now);
  while (frameTimes.length && now - frameTimes[0] > 1000) frameTimes.shift();
  if (!history.length || history[history.length - 1].epoch !== frame.epoch) history.push(frame.point);
  $("epoch").textContent = frame.epoch;
  $("loss").textContent = fixed(frame.loss, 4);
  $("train-accuracy").textContent = fixed(frame.train_accuracy, 1);
  $("test-accuracy").textContent = fixed(frame.test_accuracy, 1);
  $("fps").textContent = frame.playing && frameTimes.length > 1
    ? ((frameTimes.length - 1) * 1000 / (now - frameTimes[0])).toFixed(1) : "–";
  $("epochs-per-second").textContent = frame.playing ? fixed(frame.speed.epochs_per_second, 0) : "–";
  setStatus(frame.playing ? "playing" : frame.finished ? "finished" : "paused");
  const seeds = experiment ? experiment.seeds.length : 1;
  $("shown-seed").textContent = seeds > 1
    ? `seed ${frame.shown_seed} (the median training cost of ${seeds} seeds)` : `seed ${frame.shown_seed}`;
  drawBoundary(frame.boundary);
  drawCurves();
  drawHistograms(frame.layers);
  drawDepth(frame.layers);
}

function drawBoundary(probabilities) {
  const canvas = $("boundary");
  const context = canvas.getContext("2d");
  const n = experiment.grid;
  const image = new ImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    // p = 0.5 is white; towards 0 and 1, the colour of that class.
    const p = probabilities[i] / 255;
    const [colour, strength] = p < 0.5 ? [CLASS_COLOURS[0], 1 - 2 * p] : [CLASS_COLOURS[1], 2 * p - 1];
    for (let c = 0; c < 3; c++) image.data[4 * i + c] = 255 - 0.6 * strength * (255 - colour[c]);
    image.data[4 * i + 3] = 255;
  }
  const tile = new OffscreenCanvas(n, n);
  tile.getContext("2d").putImageData(image, 0, 0);
  context.imageSmoothingEnabled = true;
  context.drawImage(tile, 0, 0, canvas.width, canvas.height);
  const {x0, x1, y0, y1} = experiment.extent;
  const toX = (x) => ((x - x0) / (x1 - x0)) * canvas.width;
  const toY = (y) => ((y1 - y) / (y1 - y0)) * canvas.height;
  const points = (set, ringed) => {
    for (let i = 0; i < set.x.length; i++) {
      const colour = CLASS_COLOURS[set.label[i]];
      context.beginPath();
      context.arc(toX(set.x[i]), toY(set.y[i]), ringed ? 3.5 : 2.8, 0, 2 * Math.PI);
      context.fillStyle = ringed ? "white" : `rgb(${colour})`;
      context.strokeStyle = ringed ? `rgb(${colour})` : "white";
      context.lineWidth = ringed ? 1.8 : 0.8;
      context.fill();
      context.stroke();
    }
  };
  points(experiment.train, false);
  points(experiment.test, true);
}

function bandSeries(label, colour) {
  return [
    {label: `${label} (median)`, stroke: colour, width: 2},
    {label: `${label} min`, stroke: colour, width: 0.5, dash: [2, 3], show: true},
    {label: `${label} max`, stroke: colour, width: 0.5, dash: [2, 3], show: true},
  ];
}

function makeBandChart(title, yLabel, names, range) {
  const colours = ["#1565c0", "#e65100"];
  const series = [{label: "epoch"}];
  names.forEach((name, k) => series.push(...bandSeries(name, colours[k])));
  const bands = names.map((_, k) => ({series: [3 * k + 3, 3 * k + 2], fill: colours[k] + "33"}));
  return new uPlot({
    title, width: 430, height: 190, series, bands,
    scales: {x: {time: false}, y: range ? {range} : {}},
    axes: [{label: "epoch"}, {label: yLabel}],
    legend: {show: true, live: false},
  }, [[], ...names.flatMap(() => [[], [], []])], $("costs"));
}

function column(key, index) {
  return history.map((point) => (point[key] ? point[key][index] : null));
}

function drawCurves() {
  if (!costChart) {
    costChart = makeBandChart("cost", "cross-entropy", ["train", "test"]);
    accuracyChart = makeBandChart("accuracy", "% correct", ["train", "test"], [0, 100]);
  }
  const epochs = history.map((point) => point.epoch);
  const data = (a, b) => [epochs, ...[a, b].flatMap((key) => [1, 0, 2].map((i) => column(key, i)))];
  costChart.setData(data("train_loss", "test_loss"));
  accuracyChart.setData(data("train_accuracy", "test_accuracy"));
}

function drawHistograms(layers) {
  const canvas = $("histogram-canvas");
  const rowHeight = 64, titleHeight = 14, width = canvas.width, columnWidth = width / 2;
  const height = layers.length * (rowHeight + titleHeight) + 4;
  if (canvas.height !== height) canvas.height = height;
  const context = canvas.getContext("2d");
  context.fillStyle = "white";
  context.fillRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  layers.forEach((layer, row) => {
    const top = row * (rowHeight + titleHeight);
    const name = `layer ${layer.layer} (${layer.units} ${layer.activation})`;
    const cells = [
      [layer.activation_histogram, `${name}: a, std ${fixed(layer.activation_std, 3)}`, "#1565c0"],
      [layer.gradient_histogram, `${name}: dL/dz, std ${formatSmall(layer.gradient_std)}`, "#6a1b9a"],
    ];
    cells.forEach(([histogram, title, colour], c) => {
      const left = c * columnWidth + 4, cellWidth = columnWidth - 12;
      context.fillStyle = "#333";
      context.fillText(title, left, top + 11);
      const counts = histogram.counts;
      const most = Math.max(1, ...counts);
      const barWidth = cellWidth / Math.max(1, counts.length);
      context.fillStyle = colour;
      counts.forEach((count, i) => {
        const barHeight = (count / most) * (rowHeight - 14);
        context.fillRect(left + i * barWidth, top + titleHeight + rowHeight - 12 - barHeight,
                         Math.max(1, barWidth - 1), barHeight);
      });
      context.fillStyle = "#666";
      context.fillText(formatSmall(histogram.low), left, top + titleHeight + rowHeight - 1);
      const high = formatSmall(histogram.high);
      context.fillText(high, left + cellWidth - context.measureText(high).width, top + titleHeight + rowHeight - 1);
    });
  });
}

function formatSmall(value) {
  if (value === null || value === undefined) return "–";
  const size = Math.abs(value);
  return size !== 0 && (size < 1e-3 || size >= 1e4) ? value.toExponential(2) : value.toPrecision(3);
}

function drawDepth(layers) {
  // A log scale shows vanishing and exploding signals; zeros (no signal at all) are left out.
  const positive = (value) => (value !== null && value > 0 ? value : null);
  const data = [layers.map((layer) => layer.layer),
                layers.map((layer) => positive(layer.activation_std)),
                layers.map((layer) => positive(layer.gradient_std))];
  if (!depthChart) {
    depthChart = new uPlot({
      title: "standard deviation against depth", width: 360, height: 220,
      series: [{label: "layer"},
               {label: "a", stroke: "#1565c0", width: 2, points: {show: true}},
               {label: "dL/dz", stroke: "#6a1b9a", width: 2, points: {show: true}}],
      scales: {x: {time: false}, y: {distr: 3}},
      axes: [{label: "layer", incrs: [1, 2, 5, 10]}, {label: "std"}],
      legend: {show: true, live: false},
    }, data, $("depth"));
  } else {
    depthChart.setData(data);
  }
}

function drawTheory(theory) {
  // The mean-field prediction (initlab.tools.theory) for the drawn hidden layers, where installed.
  $("theory").textContent = theory
    ? `theory: χ1 = ${theory.chi1.toFixed(3)}, ${theory.phase} (σw² = ${theory.weight_variance.toFixed(3)}, σb² = ${theory.bias_variance.toFixed(3)})`
    : "theory: the mean-field prediction (χ1, order or chaos) is not available in this installation";
}

// --- export -----------------------------------------------------------------------------------
function download(name, type, content) {
  const link = document.createElement("a");
  link.href = typeof content === "string" && content.startsWith("data:")
    ? content : URL.createObjectURL(new Blob([content], {type}));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

function exportPng() {
  // Every view on one white sheet: the boundary, the curves, the depth chart, the histograms.
  const pieces = [$("boundary"), ...document.querySelectorAll("#costs canvas, #depth canvas"),
                  $("histogram-canvas")];
  const gap = 10;
  const width = Math.max(...pieces.map((canvas) => canvas.width)) + 2 * gap;
  const height = pieces.reduce((sum, canvas) => sum + canvas.height + gap, gap);
  const sheet = document.createElement("canvas");
  sheet.width = width;
  sheet.height = height;
  const context = sheet.getContext("2d");
  context.fillStyle = "white";
  context.fillRect(0, 0, width, height);
  let top = gap;
  for (const canvas of pieces) {
    context.drawImage(canvas, gap, top);
    top += canvas.height + gap;
  }
  download("initlab-explorer.png", "image/png", sheet.toDataURL("image/png"));
}

function exportCsv() {
  const keys = ["train_loss", "test_loss", "train_accuracy", "test_accuracy"];
  const header = ["epoch", ...keys.flatMap((key) => [`${key}_median`, `${key}_min`, `${key}_max`])];
  const rows = history.map((point) => [point.epoch, ...keys.flatMap((key) => [1, 0, 2].map((i) => point[key][i]))]);
  const text = [header, ...rows].map((row) => row.map((v) => (v === null ? "" : v)).join(",")).join("\n") + "\n";
  download("initlab-explorer.csv", "text/csv", text);
}

function exportJson() {
  const numbers = {
    settings: experiment && experiment.settings,
    seeds: experiment && experiment.seeds,
    theory: experiment && experiment.theory,
    history,
    current: lastFrame && {epoch: lastFrame.epoch, per_seed: lastFrame.per_seed,
                           shown_seed: lastFrame.shown_seed, layers: lastFrame.layers,
                           boundary: {grid: experiment.grid, extent: experiment.extent,
                                      probability_x255: lastFrame.boundary}},
  };
  download("initlab-explorer.json", "application/json", JSON.stringify(numbers, null, 1));
}

// --- wiring -----------------------------------------------------------------------------------
$("play").addEventListener("click", () => send({type: "play"}));
$("pause").addEventListener("click", () => send({type: "pause"}));
$("step").addEventListener("click", () => send({type: "step"}));
$("reset").addEventListener("click", () => send({type: "reset"}));
$("export-png").addEventListener("click", exportPng);
$("export-csv").addEventListener("click", exportCsv);
$("export-json").addEventListener("click", exportJson);
form.addEventListener("change", sendSettings);
form.addEventListener("submit", (event) => { event.preventDefault(); sendSettings(); });
connect();
