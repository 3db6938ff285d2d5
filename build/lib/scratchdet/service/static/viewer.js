// The photo on a canvas: zoom about the cursor (wheel), pan (drag), zoom to the part or to a
// box; kept boxes solid red, near-misses dashed orange, the highlighted box yellow, boxes an
// operator drew (missed scratches) blue. In draw mode a drag draws a new box instead.
import { $ } from "./util.js";

const COLOURS = { kept: "#ff2a2a", near: "#ff9a1f", highlight: "#ffe81a", drawn: "#2a9dff" };

export class Viewer {
  constructor(canvas) {
    this.canvas = canvas;
    this.image = null;
    this.items = [];      // [{box, score, kind: "kept" | "near"}], listed on the page
    this.drawn = [];      // boxes of "missed" decisions
    this.pending = [];    // boxes being drawn now
    this.highlight = -1;
    this.drawing = false;
    this.scale = 1; this.x = 0; this.y = 0; this.drag = null;
    this.onPendingChange = () => {};
  }

  show(image, items, drawn, partBox) {
    this.image = image; this.items = items; this.drawn = drawn;
    this.pending = []; this.highlight = -1;
    this.partBox = partBox;
    this.fitPart();
  }

  setItems(items) { this.items = items; this.highlight = -1; this.draw(); }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(this.canvas.clientWidth * ratio);
    this.canvas.height = Math.round(this.canvas.clientHeight * ratio);
  }

  fit() {
    if (!this.image) { this.resize(); return this.draw(); }
    this.fitBox([0, 0, this.image.width, this.image.height], 0);
  }

  // The part region (when known and smaller than the photo), else the whole photo.
  fitPart() {
    if (!this.image || !this.partBox) return this.fit();
    this.fitBox(this.partBox, 0.04);
  }

  // Show box [x1, y1, x2, y2] (image pixels) as large as fits, with a margin around it.
  fitBox(box, margin, minSide = 0) {
    this.resize();
    const [x1, y1, x2, y2] = box;
    const side = Math.max(x2 - x1, y2 - y1, minSide);
    const w = Math.max(x2 - x1, side / 3) * (1 + 2 * margin);
    const h = Math.max(y2 - y1, side / 3) * (1 + 2 * margin);
    const { width, height } = this.canvas;
    this.scale = Math.min(32, width / w, height / h);
    this.x = width / 2 - ((x1 + x2) / 2) * this.scale;
    this.y = height / 2 - ((y1 + y2) / 2) * this.scale;
    this.draw();
  }

  focus(index) {
    this.highlight = index;
    const item = this.items[index];
    if (item) this.fitBox(item.box, 0.6, 160);
  }

  actual() {
    if (this.image) this.zoomAt(this.canvas.width / 2, this.canvas.height / 2, 1 / this.scale);
  }

  zoomAt(cx, cy, factor) {
    const next = Math.min(32, Math.max(0.01, this.scale * factor));
    const applied = next / this.scale;
    this.x = cx - (cx - this.x) * applied;
    this.y = cy - (cy - this.y) * applied;
    this.scale = next;
    this.draw();
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    const counts = { kept: 0, near: 0 };
    if (this.image) {
      ctx.setTransform(this.scale, 0, 0, this.scale, this.x, this.y);
      ctx.imageSmoothingEnabled = this.scale < 2;
      ctx.drawImage(this.image, 0, 0);
      if ($("show-boxes").checked) this.drawBoxes(ctx, counts);
    }
    const data = this.canvas.dataset;
    data.boxesDrawn = String(counts.kept);
    data.nearDrawn = String(counts.near);
    data.highlight = String(this.highlight);
    data.view = this.visible().map(Math.round).join(",");
    $("zoom-level").textContent = this.image ? `${Math.round(this.scale * 100)} %` : "";
  }

  // The part of the image on screen, [x1, y1, x2, y2] in image pixels.
  visible() {
    if (!this.image) return [0, 0, 0, 0];
    const toImage = (cx, cy) => [(cx - this.x) / this.scale, (cy - this.y) / this.scale];
    const [x1, y1] = toImage(0, 0);
    const [x2, y2] = toImage(this.canvas.width, this.canvas.height);
    return [Math.max(0, x1), Math.max(0, y1), Math.min(this.image.width, x2),
      Math.min(this.image.height, y2)];
  }

  drawBoxes(ctx, counts) {
    const px = 1 / this.scale;  // one screen pixel in image pixels
    ctx.font = `${12 * px}px system-ui, sans-serif`;
    this.items.forEach((item, i) => {
      const colour = i === this.highlight ? COLOURS.highlight : COLOURS[item.kind];
      this.box(ctx, item.box, colour, item.kind === "near" ? [6 * px, 4 * px] : [],
        (i === this.highlight ? 4 : 2) * px, `${i + 1}: ${item.score.toFixed(2)}`);
      counts[item.kind] += 1;
    });
    for (const box of this.drawn) this.box(ctx, box, COLOURS.drawn, [], 2 * px, "missed");
    for (const box of this.pending) this.box(ctx, box, COLOURS.drawn, [4 * px, 3 * px], 2 * px, "new");
  }

  box(ctx, [x1, y1, x2, y2], colour, dash, width, label) {
    const px = 1 / this.scale;
    ctx.strokeStyle = colour; ctx.fillStyle = colour;
    ctx.lineWidth = width; ctx.setLineDash(dash);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (Math.max(x2 - x1, y2 - y1) * this.scale < 14) {  // tiny at this zoom: ring it
      ctx.beginPath();
      ctx.arc((x1 + x2) / 2, (y1 + y2) / 2, 14 * px, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.fillText(label, x1, y1 - 3 * px);
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const ratio = this.canvas.width / rect.width;
    return [(event.clientX - rect.left) * ratio, (event.clientY - rect.top) * ratio];
  }

  imagePoint(event) {
    const [cx, cy] = this.point(event);
    const clamp = (v, hi) => Math.min(hi, Math.max(0, v));
    return [clamp((cx - this.x) / this.scale, this.image.width),
      clamp((cy - this.y) / this.scale, this.image.height)];
  }

  setDrawing(on) {
    this.drawing = on && Boolean(this.image);
    this.pending = [];
    this.canvas.classList.toggle("drawing", this.drawing);
    this.draw();
    this.onPendingChange(this.pending);
  }

  listen() {
    const c = this.canvas;
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [cx, cy] = this.point(e);
      this.zoomAt(cx, cy, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
    c.addEventListener("pointerdown", (e) => {
      c.setPointerCapture(e.pointerId);
      if (this.drawing) {
        const at = this.imagePoint(e);
        this.drag = { drawFrom: at };
        this.pending.push([...at, ...at]);
      } else {
        this.drag = { at: this.point(e), x: this.x, y: this.y };
        c.classList.add("dragging");
      }
    });
    c.addEventListener("pointermove", (e) => this.move(e));
    const stop = () => this.stop();
    c.addEventListener("pointerup", stop);
    c.addEventListener("pointercancel", stop);
    c.addEventListener("dblclick", () => { if (!this.drawing) this.fit(); });
    $("fit").addEventListener("click", () => this.fit());
    $("part").addEventListener("click", () => this.fitPart());
    $("actual").addEventListener("click", () => this.actual());
    $("show-boxes").addEventListener("change", () => this.draw());
    window.addEventListener("resize", () => this.fitPart());
  }

  move(event) {
    if (!this.drag) return;
    if (this.drag.drawFrom) {
      const [fx, fy] = this.drag.drawFrom;
      const [px, py] = this.imagePoint(event);
      this.pending[this.pending.length - 1] = [Math.min(fx, px), Math.min(fy, py),
        Math.max(fx, px), Math.max(fy, py)];
    } else {
      const [px, py] = this.point(event);
      this.x = this.drag.x + px - this.drag.at[0];
      this.y = this.drag.y + py - this.drag.at[1];
    }
    this.draw();
  }

  stop() {
    if (this.drag && this.drag.drawFrom) {
      const [x1, y1, x2, y2] = this.pending[this.pending.length - 1];
      if ((x2 - x1) * this.scale < 4 || (y2 - y1) * this.scale < 4) this.pending.pop();
      this.onPendingChange(this.pending);
      this.draw();
    }
    this.drag = null;
    this.canvas.classList.remove("dragging");
  }
}
