// Demo portal: sign in with push approval (number matching), TOTP fallback, Security page.
import { api, duration, el, epoch, problemText, showOnly } from "./common.js";
import { initSecurity, showSecurity } from "./security.js";

const VIEWS = ["view-signin", "view-push", "view-code", "view-setup", "view-result", "view-security"];
const STEPS = ["sent", "delivered", "seen", "answer"];
const $ = (id) => document.getElementById(id);
const state = {
  config: { totp: false, locations: [] },
  user: null, // the user view from the API
  challenge: null, // the pending challenge (with watch_token and number)
  socket: null,
  deadline: 0, // epoch seconds (browser clock) when the push expires
  timer: null,
  codeMode: "user", // "challenge": answer the pending push with a code; "user": verify alone
};

function userPath() {
  return `/demo/api/portal/users/${encodeURIComponent(state.user.user_id)}`;
}

function show(view, options) {
  showOnly(VIEWS, view, options);
}

// ---- sign in -------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const userId = $("user-id").value.trim();
  $("signin-error").textContent = "";
  if (!/^[A-Za-z0-9][A-Za-z0-9._@+:=-]{0,127}$/.test(userId)) {
    $("signin-error").textContent = "Enter a user id: letters, digits or . _ @ + : = - (no spaces).";
    $("user-id").focus();
    return;
  }
  $("signin-button").disabled = true;
  const reply = await api("POST", "/demo/api/portal/session", { user_id: userId });
  $("signin-button").disabled = false;
  if (!reply.ok) {
    $("signin-error").textContent = problemText(reply);
    return;
  }
  state.user = reply.body;
  await requestPush();
}

async function requestPush({ resend = false } = {}) {
  const reply = await api("POST", "/demo/api/portal/challenges", {
    user_id: state.user.user_id,
    location: $("location").value,
  });
  if (resend) return showResend(reply);
  if (reply.ok) return startWaiting(reply.body);
  const code = reply.body.code;
  const mfa = state.user.mfa || {};
  if (code === "no_push_device") return noPushDevice(mfa);
  if (code === "push_blocked" || code === "user_locked" || code === "push_throttled") {
    const wait = reply.retryAfter ? ` Try again in ${duration(reply.retryAfter)}.` : "";
    const titles = {
      push_blocked: "Push requests are paused",
      user_locked: "Your account is locked",
      push_throttled: "Too many sign-in requests",
    };
    const canCode = code !== "user_locked" && state.config.totp && mfa.totp === "active";
    return showResult(false, titles[code], problemText(reply) + wait, canCode ? "code" : "retry");
  }
  $("signin-error").textContent = problemText(reply);
  show("view-signin");
}

function noPushDevice(mfa) {
  if (state.config.totp && mfa.totp === "active") {
    return showCode("user", "No phone is set up for push approval. Enter the 6-digit code from your authenticator app.");
  }
  if (mfa.state === "expired" || mfa.state === "locked") {
    return showResult(false, "Multi-factor setup overdue",
      "Your enrollment period has ended. Ask an administrator to extend it.", "retry");
  }
  const days = mfa.days_remaining;
  $("setup-text").textContent = days === null || days === undefined
    ? "Your administrator requires multi-factor authentication for this account."
    : `Your administrator requires multi-factor authentication. You have ${days} day${days === 1 ? "" : "s"} left to set it up.`;
  show("view-setup");
}

// ---- waiting for the phone -------------------------------------------------------------------

function startWaiting(challenge) {
  stopWatching();
  state.challenge = challenge;
  state.codeMode = "challenge";
  const offset = (challenge.server_now || Date.now() / 1000) - Date.now() / 1000;
  state.deadline = epoch(challenge.expires_at) - offset;
  state.total = Math.max(1, epoch(challenge.expires_at) - epoch(challenge.created_at));
  $("push-user").textContent = state.user.display_name || state.user.user_id;
  $("push-location").textContent = $("location").value;
  const hasNumber = Boolean(challenge.number);
  $("number-box").hidden = !hasNumber;
  $("no-number").hidden = hasNumber;
  $("push-number").textContent = challenge.number || "";
  $("use-code").hidden = !canUseCode();
  $("resend-result").textContent = "";
  for (const li of $("push-steps").children) li.className = "";
  setStatus("Sending the request to your phone…");
  show("view-push");
  tick();
  state.timer = setInterval(tick, 250);
  watch(challenge);
}

// Offer codes only to a user who has set them up (and only when the gateway has TOTP).
function canUseCode() {
  return Boolean(state.config.totp && state.user && state.user.mfa && state.user.mfa.totp === "active");
}

function watch(challenge) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/v1/challenges/${encodeURIComponent(challenge.id)}/ws` +
    `?watch_token=${encodeURIComponent(challenge.watch_token)}`;
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.addEventListener("message", (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch (error) { return; }
    if (message.type === "snapshot") applyFacts(message.challenge);
    else if (message.type === "push_sent") markStep("sent");
    else if (message.type === "delivered") markStep("delivered");
    else if (message.type === "seen") markStep("seen");
    else if (message.type === "result") finish(message.challenge);
  });
  socket.addEventListener("close", () => {
    if (state.socket !== socket || state.challenge !== challenge) return;
    state.socket = null;
    setTimeout(() => { if (state.challenge === challenge && !state.socket) watch(challenge); }, 1000);
  });
}

function applyFacts(challenge) {
  if (challenge.status !== "pending") return finish(challenge);
  const push = challenge.push || {};
  if (push.seen_at) markStep("seen");
  else if (push.delivered_at) markStep("delivered");
  else if (push.sent_at) markStep("sent");
  if (push.error) {
    const fallback = canUseCode() ? " Use a verification code instead." : "";
    setStatus(`The push could not be delivered (${push.error}).${fallback}`);
  }
}

function markStep(step) {
  const reached = STEPS.indexOf(step);
  const items = [...$("push-steps").children];
  if (items.some((li, i) => i > reached && li.classList.contains("done"))) return;
  items.forEach((li, i) => {
    li.className = i <= reached ? "done" : i === reached + 1 ? "current" : "";
  });
  const words = {
    sent: "Request sent. Waiting for your phone…",
    delivered: "Your phone received the request.",
    seen: "The request is open on your phone. Waiting for your answer…",
  };
  setStatus(words[step]);
}

function setStatus(text) {
  $("push-status").textContent = text;
}

function tick() {
  const left = Math.max(0, state.deadline - Date.now() / 1000);
  $("push-timer").textContent = left > 0 ? `${Math.ceil(left)} s left` : "Expired";
  $("push-bar").style.width = `${Math.min(100, (left / state.total) * 100)}%`;
}

function stopWatching() {
  clearInterval(state.timer);
  state.timer = null;
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close();
}

const OUTCOMES = {
  number_mismatch: ["The numbers didn’t match", "For your security the request was denied. Sign in again and type the number shown here."],
  user_denied: ["Sign-in denied", "The request was denied on your phone."],
  fraud_reported: ["Reported as not you", "You reported this sign-in as not yours. Push requests are paused for this account and your administrator has been notified."],
  ttl: ["The request expired", "Nobody answered within the time limit. Sign in to send a new request."],
  portal_cancelled: ["Sign-in cancelled", "The request was cancelled."],
};

function finish(challenge) {
  if (!state.challenge || challenge.id !== state.challenge.id) return;
  stopWatching();
  state.challenge = null;
  if (challenge.status === "approved") {
    const how = challenge.method === "totp" ? "Verified with a code from your authenticator app." : "Approved on your phone.";
    return signedIn(how);
  }
  const [title, detail] = OUTCOMES[challenge.reason] || ["Sign-in failed", `The request ended as ${challenge.status}.`];
  const canCode = challenge.status === "fraud" && state.config.totp && state.user.mfa?.totp === "active";
  showResult(false, title, detail, canCode ? "code" : "retry");
}

async function showResend(reply) {
  const out = $("resend-result");
  if (reply.ok && reply.body.deduplicated) {
    out.textContent = "No new push sent: the request above is still waiting (the server deduplicated it).";
  } else if (reply.ok) {
    startWaiting(reply.body);
    out.textContent = "A new request was sent.";
  } else if (reply.retryAfter) {
    out.textContent = `${problemText(reply)} Retry after ${duration(reply.retryAfter)} (HTTP ${reply.status}).`;
  } else {
    out.textContent = problemText(reply);
  }
}

async function cancelPush() {
  const challenge = state.challenge;
  state.challenge = null;
  stopWatching();
  if (challenge) await api("DELETE", `/demo/api/portal/challenges/${encodeURIComponent(challenge.id)}`);
  show("view-signin");
}

// ---- verification codes --------------------------------------------------------------------

function showCode(mode, intro) {
  state.codeMode = mode;
  $("code-intro").textContent = intro || "Open your authenticator app and enter the 6-digit code for this account.";
  $("code").value = "";
  $("code-error").textContent = "";
  show("view-code", { focus: false });
  $("code").focus();
}

async function submitCode(event) {
  event.preventDefault();
  const code = $("code").value.replace(/\s/g, "");
  if (!/^[0-9]{6}$/.test(code)) {
    $("code-error").textContent = "Enter the 6 digits your authenticator app shows.";
    return;
  }
  const challenge = state.challenge;
  const path = state.codeMode === "challenge" && challenge
    ? `/demo/api/portal/challenges/${encodeURIComponent(challenge.id)}/totp`
    : `${userPath()}/totp/verify`;
  const reply = await api("POST", path, { code });
  if (reply.ok) {
    if (challenge && state.codeMode === "challenge") return finish(reply.body);
    return signedIn("Verified with a code from your authenticator app.");
  }
  const body = reply.body;
  if (body.code === "user_locked") {
    stopWatching();
    state.challenge = null;
    const wait = reply.retryAfter ? ` Try again in ${duration(reply.retryAfter)}.` : " Ask an administrator to unlock it.";
    return showResult(false, "Your account is locked", "Too many wrong codes." + wait, "retry");
  }
  if (body.code === "challenge_expired" || body.code === "challenge_already_decided") {
    stopWatching();
    state.challenge = null;
    state.codeMode = "user";
    $("code-error").textContent = "The push request has ended. Enter the current code again.";
    return;
  }
  const messages = {
    code_invalid: "That code didn’t work.",
    code_replayed: "That code was already used. Wait for the next code.",
    code_malformed: "Enter exactly 6 digits.",
  };
  let text = messages[body.code] || problemText(reply);
  if (Number.isInteger(body.attempts_remaining)) {
    text += ` ${body.attempts_remaining} attempt${body.attempts_remaining === 1 ? "" : "s"} left.`;
  }
  $("code-error").textContent = text;
  $("code").select();
}

// ---- results -------------------------------------------------------------------------------

function signedIn(detail) {
  showResult(true, `You’re signed in, ${state.user.display_name || state.user.user_id}`, detail, "security");
}

function showResult(ok, title, detail, primary) {
  $("result-box").className = `result ${ok ? "ok" : "fail"}`;
  $("result-title").textContent = title;
  $("result-detail").textContent = detail;
  const button = $("result-primary");
  button.dataset.action = primary;
  button.textContent = { security: "Go to Security settings", retry: "Try again", code: "Use a verification code" }[primary];
  $("result-security").hidden = primary === "security" || !ok;
  show("view-result");
}

function signOut() {
  stopWatching();
  state.challenge = null;
  state.user = null;
  show("view-signin");
}

// ---- wiring --------------------------------------------------------------------------------

function onResultPrimary() {
  const action = $("result-primary").dataset.action;
  if (action === "security") return showSecurity();
  if (action === "code") return showCode("user");
  show("view-signin");
}

async function init() {
  const reply = await api("GET", "/demo/api/config");
  if (reply.ok) state.config = reply.body;
  $("location").replaceChildren(...state.config.locations.map((l) => el("option", { value: l, text: l })));
  $("push-app").textContent = state.config.app_name || "Demo Portal";
  $("signin-form").addEventListener("submit", signIn);
  $("resend").addEventListener("click", () => requestPush({ resend: true }));
  $("cancel-push").addEventListener("click", cancelPush);
  $("use-code").addEventListener("click", () => showCode("challenge"));
  $("code-form").addEventListener("submit", submitCode);
  $("back-to-push").addEventListener("click", () => requestPush());
  $("code-cancel").addEventListener("click", cancelPush);
  $("setup-now").addEventListener("click", showSecurity);
  $("setup-later").addEventListener("click", () => signedIn(
    `Remember to set up multi-factor authentication: ${state.user.mfa.days_remaining ?? "a few"} days left.`));
  $("result-primary").addEventListener("click", onResultPrimary);
  $("result-security").addEventListener("click", showSecurity);
  $("result-signout").addEventListener("click", signOut);
  $("security-signout").addEventListener("click", signOut);
  initSecurity(state, show);
  show("view-signin", { focus: false });
}

init();
