// Shared helpers for the demo pages: calls to the demo backend and safe DOM building.

/** Call the demo backend; resolves to {status, ok, body, retryAfter}, never throws on HTTP errors. */
export async function api(method, path, body) {
  const init = { method, headers: { "X-Pushgate-Demo": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    return { status: 0, ok: false, body: { detail: "The demo server cannot be reached." }, retryAfter: null };
  }
  let parsed = null;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      parsed = { detail: text.slice(0, 300) };
    }
  }
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return {
    status: response.status,
    ok: response.ok,
    body: parsed || {},
    retryAfter: Number.isFinite(retry) ? retry : null,
  };
}

/** Build an element: el("p", {class: "x", text: "hi"}, child, ...). Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The human sentence of an API problem document ("The user is locked."). */
export function problemText(reply) {
  const body = reply.body || {};
  const text = String(body.detail || body.title || `Request failed (HTTP ${reply.status})`).trim();
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

/** "1 minute", "45 seconds", "2 hours" for a Retry-After. */
export function duration(seconds) {
  if (seconds >= 5400) return `${Math.round(seconds / 3600)} hours`;
  if (seconds >= 90) return `${Math.round(seconds / 60)} minutes`;
  if (seconds >= 60) return "1 minute";
  return seconds === 1 ? "1 second" : `${seconds} seconds`;
}

/** Seconds since the epoch of an RFC 3339 time from the API. */
export function epoch(text) {
  const ms = Date.parse(text || "");
  return Number.isFinite(ms) ? ms / 1000 : 0;
}

/** Show exactly one of the elements (by id) among `ids`; move focus to its heading. */
export function showOnly(ids, shown, { focus = true } = {}) {
  for (const id of ids) document.getElementById(id).hidden = id !== shown;
  const heading = document.querySelector(`#${shown} h1, #${shown} h2`);
  if (focus && heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

/** Copy text to the clipboard, falling back to selecting the input. */
export async function copyFrom(input, status) {
  try {
    await navigator.clipboard.writeText(input.value);
    status.textContent = "Copied.";
  } catch (error) {
    input.select();
    status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
  }
}

/** "482 913" from "482913" (easier to read and type). */
export function spacedCode(code) {
  return code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code;
}
