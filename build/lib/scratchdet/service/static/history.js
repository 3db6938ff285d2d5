// The history: filters (local date range, verdict, decision, serial, station), the list
// (local times), pass rate per day and shift, and the CSV export of the same filter.
import { $, TIME_ZONE, api, element, localTime } from "./util.js";

const PAGE = 20;
const REVIEW_TEXT = {
  unreviewed: "–", clean: "clean", scratched: "scratch", incomplete: "incomplete",
};

// Local midnight of a "YYYY-MM-DD" date input, plus `days`, as an ISO (UTC) time.
function localMidnight(value, days = 0) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + days).toISOString();
}

export function filterParams() {
  const params = new URLSearchParams();
  if ($("filter-from").value) params.set("since", localMidnight($("filter-from").value));
  if ($("filter-to").value) params.set("until", localMidnight($("filter-to").value, 1));
  for (const [id, name] of [["filter-verdict", "verdict"], ["filter-decision", "decision"],
    ["filter-serial", "serial"], ["filter-station", "station"]]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function percent(rate) { return rate === null ? "–" : `${(rate * 100).toFixed(0)} %`; }

function passRateTable(report) {
  const head = element("tr");
  for (const title of ["day", "all", ...report.shifts]) head.appendChild(element("th", title));
  // Rows: local days; "all": the inspections of that day; a shift: those of the shift that
  // started on that day (a night shift runs into the next day).
  const days = [...new Set([...report.days, ...report.by_shift].map((r) => r.day))].sort();
  const rows = days.map((day) => {
    const row = element("tr");
    row.appendChild(element("td", day));
    const whole = report.days.find((d) => d.day === day);
    row.appendChild(element("td", whole ? `${percent(whole.pass_rate)} (${whole.passed}/${whole.total})` : "–"));
    for (const shift of report.shifts) {
      const found = report.by_shift.find((s) => s.day === day && s.shift === shift);
      row.appendChild(element("td", found ? `${percent(found.pass_rate)} (${found.passed}/${found.total})` : "–"));
    }
    return row;
  });
  $("pass-rate").tHead.replaceChildren(head);
  $("pass-rate").tBodies[0].replaceChildren(...rows);
  $("pass-rate-total").textContent = report.total ?
    `${percent(report.pass_rate)} passed (${report.passed}/${report.total}; days and shifts ` +
    `in ${TIME_ZONE}; a shift counts on the day it started)` : "no inspections";
}

export class History {
  constructor({ onSelect, onUnauthorized }) {
    this.offset = 0;
    this.currentId = null;
    this.enabled = false;
    this.onSelect = onSelect;
    this.onUnauthorized = onUnauthorized;
  }

  row(item) {
    const row = element("tr", "", { "data-id": item.id });
    const part = [item.serial, item.lot].filter(Boolean).join(" / ") || item.filename;
    const cells = [
      [localTime(item.created_at), "time"], [part, "part"], [item.station ?? "–", "wide"],
      [item.verdict, `verdict ${item.verdict}`], [REVIEW_TEXT[item.review], "review"],
      [item.num_boxes, "num"], [item.threshold, "num wide"],
      [(item.timings.total_ms ?? 0).toFixed(0), "num wide"], [item.model_id, "wide model"],
    ];
    for (const [value, className] of cells) row.appendChild(element("td", value, { class: className }));
    row.title = `${item.filename}${item.operator ? ` · operator ${item.operator}` : ""}`;
    row.addEventListener("click", () => this.onSelect(item));
    return row;
  }

  markCurrent(id) {
    if (id !== undefined) this.currentId = id;
    for (const row of $("history").tBodies[0].rows) {
      row.classList.toggle("current", row.dataset.id === this.currentId);
    }
  }

  clear() {
    this.enabled = false;
    $("history").tBodies[0].replaceChildren();
    $("pass-rate").tBodies[0].replaceChildren();
  }

  async refresh() {
    if (!this.enabled) return;
    const filters = filterParams();
    const params = new URLSearchParams(filters);
    params.set("limit", PAGE);
    params.set("offset", this.offset);
    const zoned = new URLSearchParams(filters);
    zoned.set("tz", TIME_ZONE);
    $("csv-link").href = `/v1/inspections.csv?${zoned}`;
    let page;
    let rates;
    try {
      [page, rates] = await Promise.all([api(`/v1/inspections?${params}`),
        api(`/v1/pass-rate?${zoned}`)]);
    } catch (error) {
      if (error.status === 401) this.onUnauthorized();
      return;
    }
    $("history").tBodies[0].replaceChildren(...page.items.map((item) => this.row(item)));
    const last = Math.min(page.offset + page.items.length, page.total);
    $("history-range").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "empty";
    $("history-prev").disabled = page.offset === 0;
    $("history-next").disabled = last >= page.total;
    passRateTable(rates);
    this.markCurrent();
  }

  listen() {
    for (const id of ["filter-from", "filter-to", "filter-verdict", "filter-decision",
      "filter-serial", "filter-station"]) {
      $(id).addEventListener("change", () => { this.offset = 0; this.refresh(); });
    }
    $("history-filters").addEventListener("submit", (e) => { e.preventDefault(); this.refresh(); });
    $("history-prev").addEventListener("click", () => {
      this.offset = Math.max(0, this.offset - PAGE); this.refresh();
    });
    $("history-next").addEventListener("click", () => { this.offset += PAGE; this.refresh(); });
  }
}
