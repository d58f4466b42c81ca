"""The demo in headless Chromium: enroll on the simulated phone, sign in, approve, deny, TOTP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Pages

pytestmark = pytest.mark.browser

PHONE_VIEWPORT = {"width": 520, "height": 980}
CODE_STEP_TIMEOUT_MS = 40_000


def expect(target: Any) -> Any:
    """Playwright's web-first assertions (imported late, so a missing browser only skips)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def sign_in(portal: Any, user: str) -> None:
    portal.get_by_label("User ID").fill(user)
    portal.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(portal: Any) -> None:
    portal.get_by_role("button", name="Sign out").click()
    expect(portal.get_by_role("heading", name="Sign in")).to_be_visible()


def open_security_during_enrollment(portal: Any, user: str) -> None:
    """A user without factors is in the enrollment period: sign in, then set up now."""
    sign_in(portal, user)
    expect(portal.get_by_role("heading", name="Set up multi-factor authentication")).to_be_visible()
    expect(portal.get_by_text(re.compile(r"You have 7 days left"))).to_be_visible()
    portal.get_by_role("button", name="Set up now").click()
    expect(portal.get_by_role("heading", name="Security")).to_be_visible()
    expect(portal.get_by_role("status").filter(has_text="days remaining")).to_be_visible()


def add_link_to_phone(phone: Any, link: str) -> None:
    phone.get_by_role("button", name="Add an account").click()
    phone.get_by_label(re.compile("Paste an enrollment link")).fill(link)
    phone.locator("#link-form").get_by_role("button", name="Add account").click()


def enroll_push(pages: Pages, user: str) -> None:
    """Security page → enrollment link → pasted into the phone, which enrolls for real."""
    portal, phone = pages.portal, pages.phone
    open_security_during_enrollment(portal, user)
    portal.get_by_role("button", name="Set up push on a phone").click()
    expect(portal.get_by_role("img", name=re.compile("QR code that enrolls"))).to_be_visible()
    link_field = portal.get_by_label("Enrollment link (single use)")
    expect(link_field).to_have_value(re.compile(r"^pushgate://enroll\?server="))
    link = link_field.input_value()
    add_link_to_phone(phone, link)
    row = phone.locator(".account.push", has_text=user)
    expect(row.locator(".badge")).to_have_text("Push · ready")
    sign_out(portal)


def wait_for_push(pages: Pages, user: str) -> tuple[str, Any]:
    """Sign in; returns the number on the portal and the request card on the phone."""
    portal, phone = pages.portal, pages.phone
    sign_in(portal, user)
    expect(portal.get_by_role("heading", name="Check your phone")).to_be_visible()
    number = portal.locator("#push-number").inner_text()
    assert re.fullmatch(r"[0-9]{2}", number)
    card = phone.get_by_role("article", name="Sign-in request")
    expect(card).to_contain_text("Demo Portal")
    expect(card).to_contain_text("Berlin, DE")
    expect(card).to_contain_text("127.0.0.1")
    expect(card).to_contain_text(re.compile(r"[0-9]+ s left"))
    expect(portal.locator('#push-steps li[data-step="seen"]')).to_have_class("done")
    expect(portal.get_by_role("status").filter(has_text="open on your phone")).to_be_visible()
    return number, card


def test_push_approve_with_number(pages: Pages, shots: Path) -> None:
    """Enroll from the portal's link, sign in, type the number on the phone: portal turns green."""
    portal, phone = pages.portal, pages.phone
    phone.set_viewport_size(PHONE_VIEWPORT)
    enroll_push(pages, "alice")
    number, card = wait_for_push(pages, "alice")
    expect(portal.locator("#use-code")).to_be_hidden()  # alice has no verification codes
    portal.screenshot(path=shots / "portal-waiting.png")
    phone.screenshot(path=shots / "phone-push.png", full_page=True)

    card.get_by_label("Enter the number shown on your sign-in screen").fill(number)
    card.get_by_role("button", name="Approve").click()

    expect(portal.get_by_role("heading", name="You’re signed in, Alice")).to_be_visible()
    expect(portal.locator(".result.ok")).to_be_visible()
    expect(portal.get_by_text("Approved on your phone.")).to_be_visible()
    expect(phone.get_by_role("status").filter(has_text="Approved")).to_be_visible()
    expect(phone.get_by_role("article", name="Sign-in request")).to_have_count(0)
    portal.screenshot(path=shots / "portal-success.png")

    portal.get_by_role("button", name="Go to Security settings").click()
    expect(portal.get_by_text("1 phone set up for push approval.")).to_be_visible()
    expect(portal.get_by_role("status").filter(has_text="is set up")).to_be_visible()


def test_push_deny(pages: Pages, shots: Path) -> None:
    """Deny ("I cancelled") on the phone: the portal shows a failure; resend is throttled."""
    portal, phone = pages.portal, pages.phone
    enroll_push(pages, "bob")
    _, card = wait_for_push(pages, "bob")
    portal.get_by_role("button", name="Resend push").click()
    expect(portal.get_by_text(re.compile("deduplicated"))).to_be_visible()

    card.get_by_role("button", name="Deny (I cancelled)").click()

    expect(portal.get_by_role("heading", name="Sign-in denied")).to_be_visible()
    expect(portal.locator(".result.fail")).to_be_visible()
    portal.screenshot(path=shots / "portal-denied.png")
    expect(phone.locator(".recent-list")).to_contain_text("Denied")

    portal.get_by_role("button", name="Try again").click()
    portal.get_by_label("User ID").press("Enter")
    expect(portal.get_by_role("heading", name="Too many sign-in requests")).to_be_visible()
    expect(
        portal.get_by_text(re.compile(r"Try again in ([0-9]+ seconds|1 minute)"))
    ).to_be_visible()


def totp_code(row: Any) -> str:
    label = row.locator(".code").get_attribute("aria-label")
    assert label is not None and re.fullmatch(r"Code [0-9]{6}", label), label
    return str(label.removeprefix("Code "))


def next_totp_code(phone: Any, previous: str) -> str:
    """Wait until the phone shows the next code (a new 30-second step), and read it."""
    phone.wait_for_function(
        "prev => document.querySelector('.account.totp .code')"
        "?.getAttribute('aria-label') !== 'Code ' + prev",
        arg=previous,
        timeout=CODE_STEP_TIMEOUT_MS,
    )
    return totp_code(phone.locator(".account.totp"))


@pytest.mark.timeout(300)  # waits for up to two 30-second TOTP steps
def test_totp_enroll_and_sign_in_with_code(pages: Pages, shots: Path) -> None:
    """Enroll TOTP, add the key to the phone by hand, confirm two codes, sign in with a third."""
    portal, phone = pages.portal, pages.phone
    phone.set_viewport_size(PHONE_VIEWPORT)
    open_security_during_enrollment(portal, "carol")
    portal.get_by_role("button", name="Set up verification codes").click()
    expect(portal.get_by_role("img", name=re.compile("verification-code key"))).to_be_visible()
    key_field = portal.get_by_label("Key (manual entry and backup)")
    expect(key_field).to_have_value(re.compile(r"^[A-Z2-7]{32}$"))
    key = key_field.input_value()
    portal.screenshot(path=shots / "totp-enrollment.png", full_page=True)

    phone.get_by_role("button", name="Add an account").click()
    phone.get_by_text("Manual code entry").click()
    phone.get_by_label("Account name").fill("carol")
    phone.get_by_label("Security key").fill(key)
    phone.locator("#manual-form").get_by_role("button", name="Add account").click()
    row = phone.locator(".account.totp", has_text="carol")
    expect(row.locator(".code")).to_have_text(re.compile(r"[0-9]{3} [0-9]{3}"))
    phone.screenshot(path=shots / "phone-accounts.png", full_page=True)

    first = totp_code(row)
    second = next_totp_code(phone, first)
    portal.get_by_label("First code").fill(first)
    portal.get_by_label("Next code").fill(second)
    portal.get_by_role("button", name="Confirm").click()
    expect(portal.get_by_text(re.compile("^Active"))).to_be_visible()
    expect(portal.get_by_role("button", name="Reset TOTP")).to_be_visible()
    sign_out(portal)

    sign_in(portal, "carol")
    expect(portal.get_by_role("heading", name="Enter a verification code")).to_be_visible()
    expect(portal.get_by_text(re.compile("No phone is set up for push"))).to_be_visible()
    portal.get_by_label("Verification code", exact=True).fill(second)
    portal.get_by_role("button", name="Verify").click()
    expect(portal.get_by_role("alert")).to_have_text(re.compile("already used|didn’t work"))

    third = next_totp_code(phone, second)
    portal.get_by_label("Verification code", exact=True).fill(third)
    portal.get_by_role("button", name="Verify").click()
    expect(portal.get_by_role("heading", name="You’re signed in, Carol")).to_be_visible()
    expect(portal.get_by_text("Verified with a code from your authenticator app.")).to_be_visible()
