// The textclass page: classify a text, draw one bar per class, colour the words when the
// model can explain itself. Plain DOM, no framework, no CDN: everything comes from the service.
"use strict";

const $ = (id) => document.getElementById(id);
const METRICS = ["accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "n"];
let info = null;
let apiKey = sessionStorage.getItem("textclass-key") || "";

async function call(path, body) {
  const headers = apiKey ? { "X-API-Key": apiKey } : {};
  const options = body === undefined ? { headers }
    : { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) $("key-card").hidden = false;
  if (!response.ok) throw new Error(data.detail || `${path}: HTTP ${response.status}`);
  return data;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function fillTable(table, entries) {
  table.replaceChildren();
  for (const [key, value] of entries) {
    const row = table.insertRow();
    cell(row, key);
    cell(row, typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : JSON.stringify(value));
  }
}

async function loadModel() {
  try {
    info = await call("/model");
  } catch (e) {
    showError(e.message);
    return;
  }
  $("key-card").hidden = true;
  $("model-name").textContent = info.name;
  document.title = `textclass · ${info.name}`;
  $("model-summary").textContent =
    `${info.task} · ${info.labels.length} ${info.task === "multilabel" ? "tags" : "classes"} · textclass ${info.textclass_version}`;
  const metrics = info.metrics ? METRICS.filter((k) => k in info.metrics).map((k) => [k, info.metrics[k]]) : [];
  fillTable($("metrics"), metrics.length ? metrics : [["metrics", "none (not served from a run directory)"]]);
  fillTable($("hyper"), Object.entries(info.hyperparameters));
  $("model-card").hidden = false;
}

function drawBars(prediction) {
  const label = prediction.label;
  const chosen = new Set(Array.isArray(label) ? label.map(String) : [String(label)]);
  const rows = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  $("bars").replaceChildren(...rows.map(([name, p]) => {
    const bar = document.createElement("div");
    bar.className = "bar" + (chosen.has(name) ? " chosen" : "");
    bar.dataset.label = name;
    bar.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    bar.querySelector(".name").textContent = name;
    bar.querySelector(".name").title = name;
    bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    return bar;
  }));
}

function drawExplanation(e) {
  const top = Math.max(1e-9, ...e.words.map((w) => Math.abs(w.weight)));
  const parts = [];
  let at = 0;
  for (const w of e.words) {
    if (w.start > at) parts.push(document.createTextNode(e.text.slice(at, w.start)));
    const span = document.createElement("span");
    const rgb = w.weight >= 0 ? "var(--pos)" : "var(--neg)";
    span.style.background = `rgba(${rgb}, ${(0.6 * Math.abs(w.weight) / top).toFixed(3)})`;
    span.title = `${w.word}: ${w.weight.toFixed(3)}`;
    span.textContent = e.text.slice(w.start, w.end);
    parts.push(span);
    at = Math.max(at, w.end);
  }
  parts.push(document.createTextNode(e.text.slice(at)));
  $("explained-text").replaceChildren(...parts);
  $("explain-for").textContent = `(for ${JSON.stringify(e.label)}, ${e.method})`;
  $("explain").hidden = false;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function classify(event) {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  $("submit").disabled = true;
  showError("");
  try {
    const { predictions } = await call("/predict", { texts: [text] });
    $("label").textContent = Array.isArray(predictions[0].label)
      ? (predictions[0].label.join(", ") || "(no tag)") : String(predictions[0].label);
    drawBars(predictions[0]);
    $("explain").hidden = true;
    $("result").hidden = false;
    if (info && info.explain) {
      const { explanations } = await call("/explain", { texts: [text] });
      drawExplanation(explanations[0]);
    }
  } catch (e) {
    showError(e.message);
  } finally {
    $("submit").disabled = false;
  }
}

$("predict-form").addEventListener("submit", classify);
$("text").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("predict-form").requestSubmit();
});
$("key-save").addEventListener("click", () => {
  apiKey = $("api-key").value.trim();
  sessionStorage.setItem("textclass-key", apiKey);
  showError("");
  loadModel();
});
loadModel();
