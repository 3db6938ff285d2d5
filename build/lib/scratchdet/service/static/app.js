// scratchdet operator page: sign in, inspect a part (serial, lot, station, operator), the
// PASS/FAIL banner, the photo zoomed to the part, the detections, re-thresholding on screen,
// operator decisions, the history. Plain ES modules, no build step.
import { History } from "./history.js";
import { $, TIME_ZONE, api, element, localTime, postJson, setStatus } from "./util.js";
import { Viewer } from "./viewer.js";

const HISTORY_REFRESH_MS = 5000;
const REMEMBERED = ["lot", "station", "operator"];  // kept in localStorage between parts
const viewer = new Viewer($("viewer"));
const historyList = new History({ onSelect: showPastInspection, onUnauthorized: () => showSignIn("signed out: sign in again") });
let session = null;
let current = null;  // the inspection on screen

// ---- signing in: an API key is traded for an HttpOnly session cookie -----------------
function showSignIn(message) {
  session = null;
  $("signin").hidden = false;
  $("who").hidden = true;
  $("sign-out").hidden = true;
  historyList.clear();
  if (message) setStatus(message, true);
}

function showUser(info) {
  session = info;
  $("signin").hidden = true;
  $("who").hidden = false;
  $("who").textContent = info.auth ? `${info.name} (${info.role})` : "open access (--no-auth)";
  $("sign-out").hidden = !info.auth;
  const input = $("threshold");
  const fixed = info.threshold_min === info.threshold_max;
  input.min = String(info.threshold_min);
  input.max = String(info.threshold_max);
  input.disabled = fixed;
  input.placeholder = fixed ? `${info.threshold_default} (fixed)` : "server default";
  if (fixed) input.value = "";
  if (!$("field-operator").value && info.auth) $("field-operator").value = info.name;
  $("save-threshold").hidden = info.role !== "admin";
  for (const button of document.querySelectorAll(".decide")) button.disabled = info.role === "viewer";
  historyList.enabled = true;
  historyList.refresh();
}

async function checkSession() {
  try { showUser(await api("/v1/session")); } catch { showSignIn(); }
}

async function signIn(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("key", $("api-key").value);
  try {
    const info = await api("/v1/session", { method: "POST", body: form });
    $("api-key").value = "";
    setStatus(`signed in as ${info.name} (${info.role})`);
    showUser(info);
  } catch (error) {
    setStatus(`sign-in refused: ${error.message}`, true);
  }
}

async function signOut() {
  await fetch("/v1/session", { method: "DELETE" });
  showSignIn();
  setStatus("signed out");
}

// ---- inspecting ---------------------------------------------------------------------
async function inspectFile(file) {
  const form = new FormData();
  form.append("photo", file, file.name);
  const threshold = $("threshold").value.trim();
  if (threshold !== "") form.append("threshold", threshold);
  for (const name of ["serial", ...REMEMBERED]) {
    const value = $(`field-${name}`).value.trim();
    if (value) form.append(name, value);
    if (REMEMBERED.includes(name)) localStorage.setItem(`scratchdet.${name}`, value);
  }
  setStatus(`inspecting ${file.name}…`);
  let body;
  try {
    body = await api("/v1/inspect", { method: "POST", body: form });
  } catch (error) {
    if (error.status === 401) showSignIn();
    setStatus(`refused: ${error.message}`, true);
    return;
  }
  showResult(body, await createImageBitmap(file));
  setStatus(`inspected ${file.name}`);
  $("field-serial").value = "";
  historyList.refresh();
}

async function showPastInspection(result) {
  setStatus(`loading ${result.filename}…`);
  const image = new Image();
  image.src = result.photo_url;
  try { await image.decode(); } catch { setStatus("photo could not be loaded", true); return; }
  showResult(result, image);
  setStatus(`showing ${result.filename} from the history`);
}

// ---- the result: banner, detections, re-threshold, decisions, details ----------------
function allDetections(result) {
  const found = result.boxes.map((box, i) => ({ box, score: result.scores[i] }));
  result.below_boxes.forEach((box, i) => found.push({ box, score: result.below_scores[i] }));
  return found.sort((a, b) => b.score - a.score);
}

function screenThreshold() { return Number($("screen-threshold").value); }

function itemsAt(threshold) {
  return allDetections(current)
    .filter((d) => d.score >= threshold / 2)
    .map((d) => ({ ...d, kind: d.score >= threshold ? "kept" : "near" }));
}

function showBanner(threshold, items) {
  const verdict = items.some((d) => d.kind === "kept") ? "fail" : "pass";
  const word = $("verdict");
  word.textContent = verdict;
  $("banner").className = `banner ${verdict}`;
  const kept = items.filter((d) => d.kind === "kept").length;
  $("box-count").textContent = String(kept);
  $("banner-note").textContent = threshold === current.threshold ?
    `${kept} box(es) at threshold ${current.threshold}` :
    `${kept} box(es) on screen at ${threshold.toFixed(2)} · stored: ` +
    `${current.verdict.toUpperCase()} at ${current.threshold}`;
}

function listDetections(items) {
  const list = $("detections");
  list.replaceChildren(...items.map((d, i) => {
    const button = element("button", `${i + 1}. ${d.score.toFixed(3)}` +
      (d.kind === "near" ? " near-miss" : ""),
      { type: "button", class: `detection ${d.kind}`, "data-box": d.box.join(",") });
    button.addEventListener("click", () => {
      viewer.focus(i);
      for (const other of list.querySelectorAll("button")) other.classList.remove("active");
      button.classList.add("active");
    });
    const item = element("li");
    item.appendChild(button);
    return item;
  }));
  $("no-detections").hidden = items.length > 0;
}

function rethreshold() {
  const threshold = screenThreshold();
  $("screen-threshold-value").textContent = threshold.toFixed(2);
  const items = itemsAt(threshold);
  showBanner(threshold, items);
  listDetections(items);
  viewer.setItems(items);
}

function showDecisions(result) {
  $("decision-log").replaceChildren(...result.decisions.map((d) => element("li",
    `${d.decision.replace("_", " ")} · ${d.boxes.length} box(es) · ${d.decided_by} · ` +
    `${localTime(d.decided_at)}${d.note ? ` · ${d.note}` : ""}`)));
  $("review-state").textContent = result.review;
}

function showDetails(result) {
  $("model-id").textContent = result.model_id;
  $("photo-name").textContent = `${result.filename} · ${result.width}×${result.height} px`;
  const rows = Object.entries(result.timings)
    .map(([name, ms]) => `<tr><td>${name}</td><td>${ms.toFixed(1)}</td></tr>`);
  $("timings").tBodies[0].innerHTML = rows.join("");
  $("overlay").src = `${result.overlay_url}?max_side=800`;
  $("overlay-link").href = result.overlay_url;
}

function showResult(result, image) {
  current = result;
  $("summary").hidden = false;
  $("review").hidden = false;
  $("verdict").dataset.inspectionId = result.id;
  $("screen-threshold").value = String(result.threshold);
  const part = [["serial", result.serial], ["lot", result.lot], ["station", result.station],
    ["operator", result.operator]].filter(([, v]) => v).map(([k, v]) => `${k} ${v}`);
  $("part-line").textContent = [...part, `${localTime(result.created_at)} (${TIME_ZONE})`].join(" · ");
  showDetails(result);
  showDecisions(result);
  drawMode(false);
  const items = itemsAt(result.threshold);
  viewer.show(image, items, missedBoxes(result), result.part_box);
  rethreshold();
  historyList.markCurrent(result.id);
}

function missedBoxes(result) {
  return result.decisions.filter((d) => d.decision === "missed").flatMap((d) => d.boxes);
}

async function decide(payload) {
  const id = current.id;
  try {
    await postJson(`/v1/inspections/${id}/decisions`, payload);
    current = await api(`/v1/inspections/${id}`);
  } catch (error) {
    setStatus(`decision refused: ${error.message}`, true);
    return;
  }
  showDecisions(current);
  viewer.drawn = missedBoxes(current);
  drawMode(false);
  setStatus(`${payload.decision.replace("_", " ")} recorded for ${current.filename}`);
  historyList.refresh();
}

function drawMode(on) {
  viewer.setDrawing(on);
  $("draw-tools").hidden = !on;
  $("decide-missed").hidden = on;
}

async function saveThreshold() {
  const threshold = screenThreshold();
  try {
    await postJson("/v1/threshold", { threshold }, "PUT");
    session.threshold_default = threshold;
    setStatus(`service threshold set to ${threshold.toFixed(2)} (until the service restarts)`);
  } catch (error) {
    setStatus(`threshold refused: ${error.message}`, true);
  }
}

// ---- readiness ----------------------------------------------------------------------
async function pollReady() {
  let body = { status: "failed", detail: "service unreachable" };
  try { body = await (await fetch("/readyz")).json(); } catch { /* keep the failure */ }
  const badge = $("ready");
  badge.className = `badge ${body.status}`;
  badge.textContent = body.status === "ready" ? `model ready: ${body.model_id}` :
    body.status === "loading" ? "model loading…" : `model failed: ${body.detail}`;
  if (body.status !== "ready") setTimeout(pollReady, 1000);
}

// ---- wiring -------------------------------------------------------------------------
function wireDropzone() {
  $("photo-input").addEventListener("change", (e) => {
    if (e.target.files.length) inspectFile(e.target.files[0]);
    e.target.value = "";
  });
  const zone = $("dropzone");
  for (const name of ["dragenter", "dragover"]) {
    document.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  document.addEventListener("dragleave", () => zone.classList.remove("over"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) inspectFile(e.dataTransfer.files[0]);
  });
}

function wireResult() {
  $("screen-threshold").addEventListener("input", rethreshold);
  $("save-threshold").addEventListener("click", saveThreshold);
  $("decide-confirm").addEventListener("click", () => decide({
    decision: "confirm", boxes: itemsAt(screenThreshold()).filter((d) => d.kind === "kept").map((d) => d.box),
  }));
  $("decide-false").addEventListener("click", () => decide({ decision: "false_alarm" }));
  $("decide-missed").addEventListener("click", () => drawMode(true));
  $("draw-cancel").addEventListener("click", () => drawMode(false));
  $("draw-save").addEventListener("click", () => decide({ decision: "missed", boxes: viewer.pending }));
  viewer.onPendingChange = (pending) => {
    $("draw-save").disabled = pending.length === 0;
    $("draw-save").textContent = `Save ${pending.length} box(es)`;
  };
}

function wire() {
  viewer.listen();
  viewer.fit();
  historyList.listen();
  wireDropzone();
  wireResult();
  for (const name of REMEMBERED) $(`field-${name}`).value = localStorage.getItem(`scratchdet.${name}`) ?? "";
  $("time-zone").textContent = TIME_ZONE;
  $("part-form").addEventListener("submit", (e) => e.preventDefault());
  $("signin").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  setInterval(() => { if (!document.hidden) historyList.refresh(); }, HISTORY_REFRESH_MS);
  pollReady();
  checkSession();
}

wire();
