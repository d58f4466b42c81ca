// Phone simulator: accounts like an authenticator app, live sign-in requests, TOTP codes.
import { api, el, epoch, problemText, spacedCode } from "./common.js";

const $ = (id) => document.getElementById(id);
const phoneId = (new URLSearchParams(location.search).get("phone") || "default").toLowerCase();
const base = `/demo/api/phone/${encodeURIComponent(phoneId)}`;
const RING = 2 * Math.PI * 16;
const cards = new Map(); // "account/challenge" -> {node, prompt, bar, left}
const rows = new Map(); // account id -> {node, account, code, ring, seconds}
let period = 30;
let stepEndsAt = 0;
let offset = 0; // server clock minus browser clock, in seconds
let serial = 0;

const now = () => Date.now() / 1000 + offset;

// ---- live state ----------------------------------------------------------------------------

function connect() {
  const source = new EventSource(`${base}/events`);
  source.addEventListener("state", (event) => render(JSON.parse(event.data)));
  source.addEventListener("open", () => { $("connection").textContent = "online"; });
  source.addEventListener("error", () => { $("connection").textContent = "reconnecting…"; });
}

function render(view) {
  offset = view.now - Date.now() / 1000;
  period = view.period;
  stepEndsAt = view.step_ends_at;
  renderPrompts(view.prompts);
  renderAccounts(view.accounts);
  renderRecent(view.recent);
  tick();
}

// ---- sign-in requests ----------------------------------------------------------------------

function renderPrompts(prompts) {
  const live = new Set(prompts.map((p) => `${p.account_id}/${p.id}`));
  for (const [key, card] of cards) {
    if (!live.has(key)) {
      card.node.remove();
      cards.delete(key);
    }
  }
  const list = $("prompt-list");
  for (const prompt of prompts) {
    const key = `${prompt.account_id}/${prompt.id}`;
    if (cards.has(key)) continue;
    const card = createCard(prompt);
    cards.set(key, card);
    list.prepend(card.node);
    const where = (prompt.context || {}).location || "an unknown location";
    $("answer-status").textContent = `New sign-in request: ${prompt.app_name || "an app"} from ${where}.`;
    openIfVisible(card);
    const active = document.activeElement;
    if (!active || active === document.body) (card.number || card.approve).focus();
  }
}

function openIfVisible(card) {
  if (document.visibilityState !== "visible" || card.opened) return;
  card.opened = true;
  const p = card.prompt;
  api("POST", `${base}/prompts/${encodeURIComponent(p.account_id)}/${encodeURIComponent(p.id)}/open`);
}

function createCard(prompt) {
  const id = `prompt-${++serial}`;
  const ctx = prompt.context || {};
  const row = (term, value) => value ? [el("dt", { text: term }), el("dd", { text: value })] : [];
  const card = { prompt, opened: false };
  card.bar = el("div", { class: "bar-fill" });
  card.left = el("span", { class: "time-left-text" });
  card.status = el("p", { class: "prompt-status", role: "status" });
  card.approve = el("button", { type: "submit", class: "primary" }, "Approve");
  const form = el("form", { class: "approve-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); answer(card, "approve"); } });
  if (prompt.number_matching) {
    card.number = el("input", {
      id: `${id}-number`, inputmode: "numeric", autocomplete: "off", maxlength: "3", class: "number-input",
      "aria-describedby": `${id}-status`,
    });
    form.append(el("div", { class: "field" },
      el("label", { for: `${id}-number`, text: "Enter the number shown on your sign-in screen" }), card.number));
  }
  form.append(card.approve);
  card.status.id = `${id}-status`;
  card.node = el("article", { class: "prompt", "aria-labelledby": `${id}-title` },
    el("div", { class: "prompt-head" },
      el("h3", { id: `${id}-title`, text: "Sign-in request" }),
      el("span", { class: "prompt-account", text: prompt.account || "" })),
    el("p", { class: "prompt-app", text: prompt.app_name || "Unknown app" }),
    el("dl", { class: "facts" },
      ...row("Location", ctx.location || "Unknown location"),
      ...row("IP address", ctx.ip),
      ...row("Browser", ctx.user_agent),
      ...row("Requested", new Date(epoch(prompt.created_at) * 1000).toLocaleTimeString())),
    el("div", { class: "countdown" }, el("div", { class: "bar", "aria-hidden": "true" }, card.bar), card.left),
    el("p", { class: "hint", text: "Check the app name and location before approving." }),
    form,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", onclick: () => answer(card, "deny") }, "Deny (I cancelled)"),
      el("button", { type: "button", class: "danger-link", onclick: () => answer(card, "fraud") }, "This wasn’t me")),
    card.status);
  return card;
}

const ANSWERED = {
  approved: "Approved. You can go back to the sign-in page.",
  number_mismatch: "Denied: the number did not match the sign-in screen.",
  user_denied: "Denied. The sign-in was stopped.",
  fraud: "Reported as not you. Your administrator will be told and further pushes are paused.",
};

async function answer(card, decision) {
  const p = card.prompt;
  const number = card.number ? card.number.value.trim() : undefined;
  if (decision === "approve" && card.number && !/^[0-9]{2,3}$/.test(number)) {
    card.status.textContent = "Enter the number shown on your sign-in screen.";
    card.number.focus();
    return;
  }
  const buttons = card.node.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  card.status.textContent = "Signing…";
  const reply = await api("POST", `${base}/prompts/${encodeURIComponent(p.account_id)}/${encodeURIComponent(p.id)}/answer`,
    { decision, number: decision === "approve" ? number : undefined });
  if (!reply.ok) {
    buttons.forEach((b) => { b.disabled = false; });
    card.status.textContent = problemText(reply);
    if ([404, 409, 410].includes(reply.status)) $("answer-status").textContent = problemText(reply);
    return;
  }
  const { status, reason } = reply.body;
  $("answer-status").textContent = ANSWERED[reason] || ANSWERED[status] || `Answered: ${status}.`;
  card.node.remove();
  cards.delete(`${p.account_id}/${p.id}`);
}

// ---- accounts ------------------------------------------------------------------------------

function renderAccounts(accounts) {
  const live = new Set(accounts.map((a) => a.id));
  for (const [id, row] of rows) {
    if (!live.has(id)) {
      row.node.remove();
      rows.delete(id);
    }
  }
  const list = $("account-list");
  for (const account of accounts) {
    let row = rows.get(account.id);
    if (!row) {
      row = createRow(account);
      rows.set(account.id, row);
      list.append(row.node);
    }
    updateRow(row, account);
  }
  $("no-accounts").hidden = accounts.length > 0;
}

function createRow(account) {
  const row = { account };
  const title = account.issuer ? `${account.issuer}` : "";
  row.badge = el("span", { class: "badge" });
  row.main = el("div", { class: "account-main" },
    el("span", { class: "account-name", text: account.label }),
    el("span", { class: "account-issuer", text: title }));
  row.side = el("div", { class: "account-side" });
  if (account.kind === "totp") {
    row.code = el("span", { class: "code" });
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 40 40");
    svg.setAttribute("class", "ring");
    svg.setAttribute("aria-hidden", "true");
    for (const cls of ["ring-track", "ring-fill"]) {
      const circle = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      circle.setAttribute("cx", "20");
      circle.setAttribute("cy", "20");
      circle.setAttribute("r", "16");
      circle.setAttribute("class", cls);
      svg.append(circle);
      row.ring = circle;
    }
    row.seconds = el("span", { class: "ring-seconds" });
    row.side.append(row.code, el("span", { class: "ring-wrap" }, svg, row.seconds));
  } else {
    row.side.append(row.badge);
  }
  row.remove = el("button", { type: "button", class: "link", onclick: () => confirmDelete(row) }, "Delete");
  row.remove.setAttribute("aria-label", `Delete account ${account.label}`);
  row.confirm = el("div", { class: "confirm", hidden: true },
    el("span", { text: `Delete ${account.label}?` }),
    el("button", { type: "button", class: "danger", onclick: () => deleteAccount(row) }, "Delete"),
    el("button", { type: "button", class: "link", onclick: () => cancelDelete(row) }, "Keep"));
  row.node = el("li", { class: `account ${account.kind}` },
    el("span", { class: "avatar", "aria-hidden": "true", text: (account.label || "?").slice(0, 1).toUpperCase() }),
    row.main, row.side, el("div", { class: "account-tools" }, row.remove, row.confirm));
  return row;
}

function updateRow(row, account) {
  row.account = account;
  if (account.kind === "totp") {
    row.code.textContent = spacedCode(account.code || "");
    row.code.setAttribute("aria-label", `Code ${account.code}`);
  } else if (account.revoked) {
    row.badge.textContent = "Push · removed on the server";
    row.badge.className = "badge off";
  } else {
    row.badge.textContent = account.connected ? "Push · ready" : "Push · connecting…";
    row.badge.className = `badge ${account.connected ? "on" : ""}`;
  }
}

function confirmDelete(row) {
  row.remove.hidden = true;
  row.confirm.hidden = false;
  row.confirm.querySelector("button.link").focus();
}

function cancelDelete(row) {
  row.confirm.hidden = true;
  row.remove.hidden = false;
  row.remove.focus();
}

async function deleteAccount(row) {
  const reply = await api("DELETE", `${base}/accounts/${encodeURIComponent(row.account.id)}`);
  $("answer-status").textContent = reply.ok ? `Deleted ${row.account.label}.` : problemText(reply);
  if (reply.ok) {
    row.node.remove();
    rows.delete(row.account.id);
    $("no-accounts").hidden = rows.size > 0;
    $("add-toggle").focus();
  }
}

function renderRecent(recent) {
  const words = { approved: "Approved", denied: "Denied", fraud: "Reported", expired: "Expired", cancelled: "Cancelled" };
  $("recent-list").replaceChildren(...recent.map((r) => el("li", {},
    el("span", { class: `pill ${r.status}`, text: words[r.status] || r.status }),
    ` ${r.app_name || "Sign-in"} · ${r.location || "unknown location"} · ${new Date(r.at * 1000).toLocaleTimeString()}`)));
}

// ---- adding accounts -----------------------------------------------------------------------

async function addAccount(body, form) {
  const status = $("add-status");
  status.textContent = "Adding…";
  const reply = await api("POST", `${base}/accounts`, body);
  if (!reply.ok) {
    status.textContent = `Could not add the account. ${problemText(reply)}`;
    return;
  }
  status.textContent = `Added ${reply.body.label}.`;
  form.reset();
  togglePanel(false);
}

function togglePanel(open) {
  $("add-panel").hidden = !open;
  $("add-toggle").setAttribute("aria-expanded", String(open));
  if (open) $("link").focus();
}

// ---- timers --------------------------------------------------------------------------------

function tick() {
  const t = now();
  for (const [key, card] of cards) {
    const left = epoch(card.prompt.expires_at) - t;
    const total = Math.max(1, epoch(card.prompt.expires_at) - epoch(card.prompt.created_at));
    if (left <= 0) {
      card.node.remove();
      cards.delete(key);
      continue;
    }
    card.bar.style.width = `${(left / total) * 100}%`;
    card.left.textContent = `${Math.ceil(left)} s left`;
  }
  const left = Math.max(0, stepEndsAt - t);
  for (const row of rows.values()) {
    if (!row.seconds) continue;
    row.seconds.textContent = String(Math.ceil(left));
    row.ring.style.strokeDasharray = `${RING}`;
    row.ring.style.strokeDashoffset = `${RING * (1 - left / period)}`;
    row.node.classList.toggle("expiring", left <= 5);
  }
}

function init() {
  $("phone-name").textContent = phoneId;
  $("add-toggle").addEventListener("click", () => togglePanel($("add-panel").hidden));
  $("link-form").addEventListener("submit", (e) => {
    e.preventDefault();
    addAccount({ link: $("link").value.trim() }, e.currentTarget);
  });
  $("manual-form").addEventListener("submit", (e) => {
    e.preventDefault();
    addAccount({ label: $("manual-label").value.trim(), secret: $("manual-key").value.trim() }, e.currentTarget);
  });
  document.addEventListener("visibilitychange", () => cards.forEach(openIfVisible));
  setInterval(tick, 250);
  connect();
}

init();
