// Small helpers shared by the page's modules (plain ES modules, no build step).

export const $ = (id) => document.getElementById(id);

const pad = (n) => String(n).padStart(2, "0");

// An ISO time (UTC from the API) as "YYYY-MM-DD HH:MM:SS" in the browser's time zone.
export function localTime(iso) {
  const t = new Date(iso);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ` +
    `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

// The browser's IANA time zone (sent with pass-rate and CSV requests).
export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

// fetch + JSON; throws Error("<status> <code>: <detail>") on a refusal.
export async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const error = new Error(`${response.status} ${body.error}: ${body.detail}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

export function postJson(path, payload, method = "POST") {
  return api(path, {
    method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
  });
}

// A new element with text content and attributes.
export function element(tag, text = "", attributes = {}) {
  const node = document.createElement(tag);
  if (text !== "") node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}
