// Talking to the page server: actions are HTTP posts (/api/...); what went wrong shows under the box.

import { $ } from "./state.js";

// Every action carries X-Playground: 1, which no HTML form can send (web.py refuses posts without it).
export async function post(url, form) {
  const response = await fetch(url, form instanceof FormData
    ? { method: "POST", headers: { "X-Playground": "1" }, body: form }
    : { method: "POST", headers: { "Content-Type": "application/json", "X-Playground": "1" }, body: JSON.stringify(form) });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: await response.text().catch(() => "") }; }
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

export function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

export function setStatus(online, text) {
  $("status").className = online ? "online" : "offline";
  $("status").textContent = text;
}
