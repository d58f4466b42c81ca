// Demo portal, Security page: enrollment-period banner, push enrollment, TOTP enroll/confirm/reset.
import { api, copyFrom, el, problemText } from "./common.js";

const $ = (id) => document.getElementById(id);
let state = null; // the portal's shared state (user, config)
let show = null; // the portal's view switcher

function userPath() {
  return `/demo/api/portal/users/${encodeURIComponent(state.user.user_id)}`;
}

/** Show the Security page of the signed-in user and load its data. */
export async function showSecurity() {
  $("security-user").textContent = state.user.user_id;
  $("push-enroll").hidden = true;
  $("totp-enroll").hidden = true;
  show("view-security");
  await loadSecurity();
}

async function loadSecurity() {
  const reply = await api("GET", userPath());
  if (!reply.ok) {
    $("push-summary").textContent = problemText(reply);
    return;
  }
  const { user, devices } = reply.body;
  state.user = user;
  const mfa = user.mfa;
  const banner = $("mfa-banner");
  banner.hidden = false;
  if (mfa.state === "grace") {
    banner.className = "banner warn";
    banner.textContent = `Set up multi-factor authentication: ${mfa.days_remaining} day${mfa.days_remaining === 1 ? "" : "s"} remaining in your enrollment period.`;
  } else if (mfa.state === "enrolled") {
    banner.className = "banner ok";
    banner.textContent = "Multi-factor authentication is set up.";
  } else {
    banner.className = "banner fail";
    banner.textContent = `Multi-factor state: ${mfa.state}. Ask an administrator for help.`;
  }
  $("push-summary").textContent = devices.length
    ? `${devices.length} phone${devices.length === 1 ? "" : "s"} set up for push approval.`
    : "No phone set up yet.";
  $("device-list").replaceChildren(...devices.map((d) => el("li", {},
    el("strong", { text: d.name || "Phone" }),
    el("span", { class: "muted", text: ` · added ${new Date(d.created_at).toLocaleString()}` }))));
  $("enroll-push").textContent = devices.length ? "Set up another phone" : "Set up push on a phone";
  renderTotpState(mfa.totp);
}

function renderTotpState(totp) {
  const available = state.config.totp;
  $("enroll-totp").hidden = !available || totp === "active";
  $("totp-reset-form").hidden = !available || totp !== "active";
  if (!available) {
    $("totp-summary").textContent = "Verification codes are not available on this server yet.";
  } else {
    $("totp-summary").textContent = {
      none: "Not set up.",
      pending: "Setup started but not confirmed yet.",
      active: "Active. To move to a new app, reset with a current code and enroll again.",
    }[totp] || totp;
    $("enroll-totp").textContent = totp === "pending" ? "Start over" : "Set up verification codes";
  }
}

async function enrollPush() {
  const reply = await api("POST", `${userPath()}/push-enrollment`);
  const status = $("push-enroll-status");
  $("push-enroll").hidden = false;
  if (!reply.ok) {
    status.textContent = problemText(reply);
    return;
  }
  $("push-qr").src = reply.body.qr_src;
  $("push-link").value = reply.body.enroll_url;
  $("push-link-expiry").textContent = `Valid once, until ${new Date(reply.body.expires_at).toLocaleTimeString()}.`;
  $("add-push-to-phone").disabled = false;
  status.textContent = "";
  $("push-link").focus();
}

async function addToPhone(link, status, button) {
  button.disabled = true;
  status.textContent = "Adding to the phone simulator…";
  const reply = await api("POST", "/demo/api/phone/default/accounts", { link });
  if (!reply.ok) {
    button.disabled = false;
    status.textContent = `The phone could not add it. ${problemText(reply)}`;
    return false;
  }
  status.textContent = `Added to the phone simulator as “${reply.body.label}”. Open the simulator to see it.`;
  return true;
}

async function enrollTotp() {
  const reply = await api("POST", `${userPath()}/totp`);
  if (!reply.ok) {
    $("totp-summary").textContent = problemText(reply);
    return;
  }
  showTotpEnrollment(reply.body);
}

function showTotpEnrollment(body) {
  $("totp-enroll").hidden = false;
  $("totp-qr").src = body.qr_src;
  $("totp-key").value = body.secret;
  $("totp-key").dataset.uri = body.otpauth_uri;
  $("add-totp-to-phone").disabled = false;
  for (const id of ["totp-add-status", "totp-confirm-status"]) $(id).textContent = "";
  $("totp-code-1").value = "";
  $("totp-code-2").value = "";
  renderTotpState("pending");
  $("totp-key").focus();
}

async function confirmTotp(event) {
  event.preventDefault();
  const codes = [$("totp-code-1").value.trim(), $("totp-code-2").value.trim()];
  const status = $("totp-confirm-status");
  if (!codes.every((c) => /^[0-9]{6}$/.test(c))) {
    status.textContent = "Enter two 6-digit codes.";
    return;
  }
  const reply = await api("POST", `${userPath()}/totp/confirm`, { codes });
  if (!reply.ok) {
    status.textContent = problemText(reply);
    return;
  }
  $("totp-enroll").hidden = true;
  await loadSecurity();
  $("totp-reset-status").textContent = "Verification codes are active. You can now sign in with a code.";
}

async function resetTotp(event) {
  event.preventDefault();
  const code = $("totp-reset-code").value.trim();
  const reply = await api("POST", `${userPath()}/totp/reset`, { code });
  if (!reply.ok) {
    $("totp-reset-status").textContent = problemText(reply);
    return;
  }
  $("totp-reset-code").value = "";
  $("totp-reset-status").textContent = "Your old key was cleared. Enroll the new key below.";
  showTotpEnrollment(reply.body);
}

/** Wire the Security page's controls to the portal's state and view switcher. */
export function initSecurity(portalState, showView) {
  state = portalState;
  show = showView;
  $("enroll-push").addEventListener("click", enrollPush);
  $("copy-push-link").addEventListener("click", () => copyFrom($("push-link"), $("push-enroll-status")));
  $("add-push-to-phone").addEventListener("click", async (e) => {
    if (await addToPhone($("push-link").value, $("push-enroll-status"), e.currentTarget)) loadSecurity();
  });
  $("enroll-totp").addEventListener("click", enrollTotp);
  $("copy-totp-key").addEventListener("click", () => copyFrom($("totp-key"), $("totp-add-status")));
  $("add-totp-to-phone").addEventListener("click", (e) =>
    addToPhone($("totp-key").dataset.uri, $("totp-add-status"), e.currentTarget));
  $("totp-confirm-form").addEventListener("submit", confirmTotp);
  $("totp-reset-form").addEventListener("submit", resetTotp);
}
