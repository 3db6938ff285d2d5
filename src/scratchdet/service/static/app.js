// scratchdet inspection page: upload, zoomable viewer with boxes, verdict, history.
"use strict";

const $ = (id) => document.getElementById(id);
const HISTORY_PAGE = 20;
const HISTORY_REFRESH_MS = 5000;

// ---- viewer: the photo on a canvas, wheel zoom about the cursor, drag pan -------------
const viewer = {
  canvas: $("viewer"), image: null, boxes: [], scores: [],
  scale: 1, x: 0, y: 0, drag: null,

  show(image, boxes, scores) {
    this.image = image; this.boxes = boxes; this.scores = scores;
    this.fit();
  },
  resize() {
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(this.canvas.clientWidth * ratio);
    this.canvas.height = Math.round(this.canvas.clientHeight * ratio);
  },
  fit() {
    this.resize();
    if (!this.image) return this.draw();
    const { width, height } = this.canvas;
    this.scale = Math.min(width / this.image.width, height / this.image.height);
    this.x = (width - this.image.width * this.scale) / 2;
    this.y = (height - this.image.height * this.scale) / 2;
    this.draw();
  },
  actual() {
    if (!this.image) return;
    this.zoomAt(this.canvas.width / 2, this.canvas.height / 2, 1 / this.scale);
  },
  zoomAt(cx, cy, factor) {
    const next = Math.min(32, Math.max(0.01, this.scale * factor));
    const applied = next / this.scale;
    this.x = cx - (cx - this.x) * applied;
    this.y = cy - (cy - this.y) * applied;
    this.scale = next;
    this.draw();
  },
  draw() {
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    let drawn = 0;
    if (this.image) {
      ctx.setTransform(this.scale, 0, 0, this.scale, this.x, this.y);
      ctx.imageSmoothingEnabled = this.scale < 2;
      ctx.drawImage(this.image, 0, 0);
      if ($("show-boxes").checked) drawn = this.drawBoxes(ctx);
    }
    this.canvas.dataset.boxesDrawn = String(drawn);
    $("zoom-level").textContent = this.image ? `${Math.round(this.scale * 100)} %` : "";
  },
  drawBoxes(ctx) {
    const px = 1 / this.scale;  // one screen pixel in image pixels
    ctx.lineWidth = 2 * px;
    ctx.font = `${12 * px}px system-ui, sans-serif`;
    this.boxes.forEach(([x1, y1, x2, y2], i) => {
      ctx.strokeStyle = "#ff2a2a";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const small = Math.max(x2 - x1, y2 - y1) * this.scale < 14;
      if (small) {  // tiny scratch at this zoom: ring it so it can be found
        ctx.beginPath();
        ctx.arc((x1 + x2) / 2, (y1 + y2) / 2, 14 * px, 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.fillStyle = "#ff2a2a";
      ctx.fillText(this.scores[i].toFixed(2), x1, y1 - 3 * px);
    });
    return this.boxes.length;
  },
  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const ratio = this.canvas.width / rect.width;
    return [(event.clientX - rect.left) * ratio, (event.clientY - rect.top) * ratio];
  },
  listen() {
    const c = this.canvas;
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [cx, cy] = this.point(e);
      this.zoomAt(cx, cy, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
    c.addEventListener("pointerdown", (e) => {
      c.setPointerCapture(e.pointerId);
      this.drag = { at: this.point(e), x: this.x, y: this.y };
      c.classList.add("dragging");
    });
    c.addEventListener("pointermove", (e) => {
      if (!this.drag) return;
      const [px, py] = this.point(e);
      this.x = this.drag.x + px - this.drag.at[0];
      this.y = this.drag.y + py - this.drag.at[1];
      this.draw();
    });
    const stop = () => { this.drag = null; c.classList.remove("dragging"); };
    c.addEventListener("pointerup", stop);
    c.addEventListener("pointercancel", stop);
    c.addEventListener("dblclick", () => this.fit());
    $("fit").addEventListener("click", () => this.fit());
    $("actual").addEventListener("click", () => this.actual());
    $("show-boxes").addEventListener("change", () => this.draw());
    window.addEventListener("resize", () => this.fit());
  },
};

// ---- signing in: an API key is traded for an HttpOnly session cookie -----------------
let signedIn = false;

function showSignIn(message) {
  signedIn = false;
  $("signin").hidden = false;
  $("who").hidden = true;
  $("sign-out").hidden = true;
  $("history").tBodies[0].replaceChildren();
  if (message) setStatus(message, true);
}

function showUser(session) {
  signedIn = true;
  $("signin").hidden = true;
  $("who").hidden = false;
  $("who").textContent = session.auth ? `${session.name} (${session.role})` : "open access (--no-auth)";
  $("sign-out").hidden = !session.auth;
  const input = $("threshold");
  const fixed = session.threshold_min === session.threshold_max;
  input.min = String(session.threshold_min);
  input.max = String(session.threshold_max);
  input.disabled = fixed;
  input.placeholder = fixed ? `${session.threshold_default} (fixed)` : "server default";
  if (fixed) input.value = "";
}

async function checkSession() {
  let response;
  try { response = await fetch("/v1/session"); } catch { return; }
  if (response.ok) {
    showUser(await response.json());
    refreshHistory();
  } else {
    showSignIn();
  }
}

async function signIn(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("key", $("api-key").value);
  const response = await fetch("/v1/session", { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) {
    setStatus(`sign-in refused: ${response.status} ${body.error}: ${body.detail}`, true);
    return;
  }
  $("api-key").value = "";
  setStatus(`signed in as ${body.name} (${body.role})`);
  showUser(body);
  refreshHistory();
}

async function signOut() {
  await fetch("/v1/session", { method: "DELETE" });
  showSignIn();
  setStatus("signed out");
}

// ---- inspecting ---------------------------------------------------------------------
function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function inspectFile(file) {
  const form = new FormData();
  form.append("photo", file, file.name);
  const threshold = $("threshold").value.trim();
  if (threshold !== "") form.append("threshold", threshold);
  setStatus(`inspecting ${file.name}…`);
  let body;
  try {
    const response = await fetch("/v1/inspect", { method: "POST", body: form });
    body = await response.json();
    if (response.status === 401) showSignIn();
    if (!response.ok) throw new Error(`${response.status} ${body.error}: ${body.detail}`);
  } catch (error) {
    setStatus(`refused: ${error.message}`, true);
    return;
  }
  const image = await createImageBitmap(file);
  showResult(body, image);
  setStatus(`inspected ${file.name}`);
  refreshHistory();
}

function showResult(result, image) {
  $("result").hidden = false;
  const verdict = $("verdict");
  verdict.textContent = result.verdict;
  verdict.className = `verdict ${result.verdict}`;
  verdict.dataset.inspectionId = result.id;
  $("box-count").textContent = String(result.num_boxes);
  $("model-id").textContent = result.model_id;
  $("photo-name").textContent = `${result.filename} · ${result.width}×${result.height} px · ` +
    `threshold ${result.threshold}`;
  const rows = Object.entries(result.timings)
    .map(([name, ms]) => `<tr><td>${name}</td><td>${ms.toFixed(1)}</td></tr>`);
  $("timings").tBodies[0].innerHTML = rows.join("");
  $("overlay").src = `${result.overlay_url}?max_side=800`;
  $("overlay-link").href = result.overlay_url;
  viewer.show(image, result.boxes, result.scores);
  currentId = result.id;
  markCurrentRow();
}

async function showPastInspection(result) {
  setStatus(`loading ${result.filename}…`);
  const image = new Image();
  image.src = result.photo_url;
  try { await image.decode(); } catch { setStatus("photo could not be loaded", true); return; }
  showResult(result, image);
  setStatus(`showing ${result.filename} from the history`);
}

// ---- history ------------------------------------------------------------------------
let historyOffset = 0;
let currentId = null;

function markCurrentRow() {
  for (const row of $("history").tBodies[0].rows) {
    row.classList.toggle("current", row.dataset.id === currentId);
  }
}

function historyRow(item) {
  const row = document.createElement("tr");
  row.dataset.id = item.id;
  const cells = [item.created_at.replace("T", " ").slice(0, 19), item.filename, item.verdict,
    item.num_boxes, item.threshold, (item.timings.total_ms ?? 0).toFixed(0), item.model_id];
  for (const value of cells) {
    const cell = document.createElement("td");
    cell.textContent = String(value);
    row.appendChild(cell);
  }
  row.cells[2].className = `verdict ${item.verdict}`;
  row.addEventListener("click", () => showPastInspection(item));
  return row;
}

async function refreshHistory() {
  if (!signedIn) return;
  const params = new URLSearchParams({ limit: HISTORY_PAGE, offset: historyOffset });
  const verdict = $("history-verdict").value;
  if (verdict) params.set("verdict", verdict);
  let page;
  try {
    const response = await fetch(`/v1/inspections?${params}`);
    if (response.status === 401) { showSignIn("signed out: sign in again"); return; }
    if (!response.ok) return;
    page = await response.json();
  } catch { return; }
  $("history").tBodies[0].replaceChildren(...page.items.map(historyRow));
  const last = Math.min(page.offset + page.items.length, page.total);
  $("history-range").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "empty";
  $("history-prev").disabled = page.offset === 0;
  $("history-next").disabled = last >= page.total;
  markCurrentRow();
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
function wire() {
  viewer.listen();
  viewer.fit();
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
  $("history-verdict").addEventListener("change", () => { historyOffset = 0; refreshHistory(); });
  $("history-prev").addEventListener("click", () => {
    historyOffset = Math.max(0, historyOffset - HISTORY_PAGE); refreshHistory();
  });
  $("history-next").addEventListener("click", () => {
    historyOffset += HISTORY_PAGE; refreshHistory();
  });
  $("signin").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  setInterval(() => { if (!document.hidden) refreshHistory(); }, HISTORY_REFRESH_MS);
  pollReady();
  checkSession();
}

wire();
