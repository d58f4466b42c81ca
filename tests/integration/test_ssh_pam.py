"""SSH logins through the PAM module: OpenSSH's client, Debian's sshd, real pushgate processes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushgate.embedded import EmbeddedRedis, free_port
from tests.integration.ssh_stack import (
    HOST,
    NUMBER,
    PROMPT,
    Stack,
    active_totp,
    enrolled,
    expect,
    finish,
    new_user_id,
    next_request,
    phone,
    portal_session,
    ssh_stack,
    tls_front,
)
from tests.integration.sshkit import Terminal, local_group

pytestmark = pytest.mark.timeout(90)

SHELL_RAN = "SHELL-RAN-42"
DENIED = "Permission denied"


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ssh_stack(redis_server, tmp_path_factory.mktemp("ssh-pam")) as running:
        yield running


async def password_then_prompt(stack: Stack, term: Terminal) -> str:
    """Answer the password prompt; returns the number pushgate shows next."""
    await expect(term, r"Password: ")
    term.send(stack.password + "\n")
    number = (await expect(term, NUMBER)).group(1)
    await expect(term, PROMPT)
    return number


async def refused(term: Terminal, *lines: str) -> None:
    """The terminal shows ``lines``, then OpenSSH's refusal; no shell ran."""
    for line in lines:
        await expect(term, line)
    await expect(term, DENIED)
    assert await finish(term) == 255
    assert SHELL_RAN not in term.output


async def shell_ran(term: Terminal, *lines: str) -> None:
    """The terminal shows ``lines``, then the shell's output, and ssh exits 0."""
    for line in lines:
        await expect(term, line)
    await expect(term, SHELL_RAN)
    assert await finish(term) == 0


async def after_password(stack: Stack, *lines: str, allowed: bool) -> None:
    """Log in with the password alone and check what follows (no request is shown)."""
    with stack.ssh_password() as term:
        await expect(term, r"Password: ")
        term.send(stack.password + "\n")
        await (shell_ran if allowed else refused)(term, *lines)


async def test_push_approved_runs_the_shell_for_the_user_of_the_same_name(stack: Stack) -> None:
    """With no mapping the pushgate user is the local name; the phone sees the app name and the
    client's IP, the approval with the shown number lets the shell run."""
    stack.configure()
    async with portal_session(stack) as (portal, _):
        device = await phone(stack, portal, stack.pam_user)
        async with device.websocket() as channel:
            with stack.ssh_password() as term:
                number = await password_then_prompt(stack, term)
                request = await next_request(channel)
                assert request["app_name"] == f"SSH on {HOST}"
                assert request["context"]["ip"] == "127.0.0.1"
                await device.respond(request["id"], "approve", number=number)
                term.send("\n")
                await shell_ran(term, r'Approved on "Pixel 8"\. Welcome\.')
        view = await portal.call("GET", f"/v1/challenges/{request['id']}")
        assert view.body["status"] == "approved"
        assert view.body["user_id"] == stack.pam_user


@pytest.mark.parametrize(
    ("decision", "wrong_number", "message"),
    [
        ("deny", False, r"Denied on your phone; login refused\."),
        ("fraud", False, r"Reported on your phone as not you; login refused and reported\."),
        ("approve", True, r"The number chosen in the app did not match; login refused\."),
    ],
)
async def test_phone_refusal_after_enter_refuses_the_login(
    stack: Stack, decision: str, wrong_number: bool, message: str
) -> None:
    """Enter first, then the phone denies, reports fraud or picks the wrong number: the login
    is refused with a one-line reason and no shell runs."""
    async with enrolled(stack, stack.pam_user) as (_, device):
        with stack.ssh_password() as term:
            number = await password_then_prompt(stack, term)
            term.send("\n")
            (request,) = await device.list_challenges()
            chosen = str((int(number) + 1) % 100).zfill(len(number)) if wrong_number else number
            await device.respond(request["id"], decision, number=chosen)  # type: ignore[arg-type]
            await refused(term, message)


async def test_request_expiry_refuses_the_pam_login_and_the_terminal_offers_a_new_one(
    stack: Stack,
) -> None:
    """Requests that live 15 s and nobody answers: the PAM login is refused; at the same time the
    ForceCommand's terminal offers a new request, and approving that one runs the command."""
    pam_user_id, key_user_id = new_user_id(), new_user_id()
    stack.configure(users={stack.pam_user: pam_user_id, stack.key_user: key_user_id})
    async with portal_session(stack) as (portal, admin):
        await phone(stack, portal, pam_user_id)
        key_phone = await phone(stack, portal, key_user_id)
        before = (await admin.call("GET", "/v1/policy")).body["push_ttl_seconds"]
        changed = await admin.call("PATCH", "/v1/policy", {"push_ttl_seconds": 15})
        assert changed.status == 200, changed.body
        try:
            with stack.ssh_password() as pam, stack.ssh_key("echo COMMAND-RAN") as terminal:
                await password_then_prompt(stack, pam)
                pam.send("\n")
                await expect(terminal, NUMBER)
                await expect(pam, r"No answer within 15 s; login refused\.", timeout=40)
                await refused(pam)
                await expect(terminal, r"No answer within 15 s\. Press Enter to send a new request")
                terminal.send("\n")
                number = (await expect(terminal, NUMBER)).group(1)
                (request,) = await key_phone.list_challenges()
                await key_phone.respond(request["id"], "approve", number=number)
                await expect(terminal, "COMMAND-RAN")
                assert await finish(terminal) == 0
        finally:
            await admin.call("PATCH", "/v1/policy", {"push_ttl_seconds": before})


async def test_typed_code_runs_the_shell_and_the_same_code_again_is_refused(stack: Stack) -> None:
    """A code from the authenticator app typed at the prompt approves the request; the same code
    at the next login is refused as already used, and the login with it fails."""
    async with enrolled(stack, stack.pam_user) as (portal, _):
        code = await active_totp(portal, stack.configured_user(stack.pam_user))
    with stack.ssh_password() as first:
        await password_then_prompt(stack, first)
        first.send(code + "\n")
        await shell_ran(first, r"Code accepted\. Welcome\.")
    with stack.ssh_password() as again:
        await password_then_prompt(stack, again)
        for _ in range(2):  # max_code_attempts = 2
            again.send(code + "\n")
            await expect(again, r"That code was already used; wait for the next one\.")
        await refused(again, r"Too many wrong codes; login refused\.")


async def test_gateway_unreachable_refuses_the_login_when_failing_closed(stack: Stack) -> None:
    """Nothing listens at the configured gateway: the login is refused (fail closed)."""
    stack.configure(url=f"http://127.0.0.1:{free_port()}")
    await after_password(
        stack, r"The sign-in service cannot be reached; login refused\.", allowed=False
    )


async def test_gateway_unreachable_lets_in_only_with_fail_open_and_logs_an_alert(
    stack: Stack,
) -> None:
    """With fail_mode = open the same outage lets the user in, and syslog gets an ALERT line."""
    stack.configure(url=f"http://127.0.0.1:{free_port()}", fail_mode="open")
    stack.syslog_lines()
    await after_password(stack, r"without a second factor \(fail_mode = open\)", allowed=True)
    alerts = [line for line in stack.syslog_lines() if line.startswith("<81>")]  # authpriv.alert
    assert any(f"FAIL OPEN: {stack.pam_user} from 127.0.0.1" in line for line in alerts), alerts


async def test_key_the_gateway_rejects_refuses_even_with_fail_open(stack: Stack) -> None:
    """A revoked or mistyped portal key is a configuration error, never an outage: refused."""
    stack.configure(api_key="pg_live_not-a-key", fail_mode="open")
    message = r"The sign-in service refused this server's request \(unauthorized\)"
    await after_password(stack, message, allowed=False)


async def test_check_command_reports_the_gateway_and_a_users_factors(stack: Stack) -> None:
    """``pushgate-ssh check --user`` validates the file, reaches the gateway with the key and
    shows how that account would sign in."""
    async with enrolled(stack, stack.pam_user):
        pass
    done = subprocess.run(
        [str(stack.launcher), "check", "--user", stack.pam_user],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    user_id = stack.configured_user(stack.pam_user)
    assert f"gateway {stack.base_url}: reachable, API key accepted" in done.stdout
    assert f"-> pushgate user {user_id}: 1 push device(s), TOTP none" in done.stdout


async def test_user_without_any_device_is_refused(stack: Stack) -> None:
    """A user with neither a phone nor an authenticator app is refused, with the reason."""
    stack.configure(users={stack.pam_user: new_user_id()})
    message = rf"No phone or authenticator app is set up for {stack.pam_user}"
    await after_password(stack, message, allowed=False)


async def test_user_the_tenant_exempts_from_mfa_signs_in_without_a_device(stack: Stack) -> None:
    """A user without devices whom the tenant marks ``mfa_required: false`` gets in."""
    user_id = new_user_id()
    stack.configure(users={stack.pam_user: user_id})
    async with portal_session(stack) as (portal, _):
        put = await portal.call("PUT", f"/v1/users/{user_id}", {"mfa_required": False})
        assert put.status == 201, put.body
    await after_password(stack, allowed=True)


async def test_member_of_an_exempt_group_skips_the_second_factor(stack: Stack) -> None:
    """A member of a group named in exempt_groups signs in with the password alone."""
    with local_group("pgex", stack.pam_user) as group:
        stack.configure(users={stack.pam_user: new_user_id()}, exempt_groups=f"wheel, {group}")
        await after_password(stack, allowed=True)


@pytest.mark.parametrize(
    ("problem", "key"),
    [("bad_fail_mode", "fail_mode"), ("readable_by_others", "file"), ("unknown_key", "fail_mod")],
)
async def test_bad_config_refuses_the_login_naming_the_key(
    stack: Stack, problem: str, key: str
) -> None:
    """A config with a bad value, an unknown key or a mode others can read refuses the login
    and says which key is wrong."""
    if problem == "bad_fail_mode":
        stack.configure(fail_mode="sometimes")
    elif problem == "unknown_key":
        stack.configure(fail_mod="open")
    else:
        stack.configure()
        os.chmod(stack.config, 0o644)
    message = rf"Sign-in is not set up correctly on this server \({key}\)"
    await after_password(stack, message, allowed=False)


async def test_pamtester_on_another_service_shows_its_label_and_remote_host(stack: Stack) -> None:
    """Any PAM service can use the module: pamtester on a sudo-like service gets the number,
    the phone sees "sudo on build-01" and the PAM_RHOST, and the approval authenticates."""
    async with enrolled(stack, stack.pam_user) as (_, device):
        argv = ["pamtester", "-I", "rhost=198.51.100.7", stack.sudo_service, stack.pam_user]
        with Terminal([*argv, "authenticate"]) as term:
            number = (await expect(term, NUMBER)).group(1)
            await expect(term, PROMPT)
            (request,) = await device.list_challenges()
            assert request["app_name"] == f"sudo on {HOST}"
            assert request["context"]["ip"] == "198.51.100.7"
            await device.respond(request["id"], "approve", number=number)
            term.send("\n")
            await expect(term, r"Approved on \"Pixel 8\"")
            await expect(term, r"pamtester: successfully authenticated")
            assert await finish(term) == 0


async def put_user_in_state(stack: Stack, state: str) -> None:
    """Throttle (five pushes in the window), block (a fraud report) or lock (failed codes) the
    PAM user's freshly mapped pushgate user."""
    async with enrolled(stack, stack.pam_user) as (portal, device):
        user_id = stack.configured_user(stack.pam_user)
        if state == "throttled":
            for n in range(5):
                created = await portal.create_challenge(user_id, resource=f"web-{n}")
                assert created.status == 201, created.body
        elif state == "blocked":
            created = await portal.create_challenge(user_id)
            await device.respond(created.body["id"], "fraud", number=created.body["number"])
        else:
            await active_totp(portal, user_id)
            for _ in range(5):
                await portal.call("POST", f"/v1/users/{user_id}/totp/verify", {"code": "x"})


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("throttled", r"Too many sign-in requests; try again in \d+ (s|min)\."),
        ("blocked", r"Sign-in requests are paused after a report of fraud; try again in \d+ min"),
        ("locked", r"Your account is locked after too many failed codes; try again in \d+ min\."),
    ],
)
async def test_throttled_blocked_or_locked_user_is_refused_with_the_reason(
    stack: Stack, state: str, message: str
) -> None:
    """Fatigue caps, a fraud block and a lock refuse the login before any prompt, saying when
    to try again."""
    await put_user_in_state(stack, state)
    await after_password(stack, message, allowed=False)


async def test_throttled_user_with_an_authenticator_app_signs_in_with_a_code(
    stack: Stack,
) -> None:
    """When no push may be sent but the user has an authenticator app, the module asks for a
    code instead, and a valid one lets the shell run."""
    await put_user_in_state(stack, "throttled")
    async with portal_session(stack) as (portal, _):
        code = await active_totp(portal, stack.configured_user(stack.pam_user))
    with stack.ssh_password() as term:
        await expect(term, r"Password: ")
        term.send(stack.password + "\n")
        await expect(term, r"Too many sign-in requests")
        await expect(term, r"6-digit code from your authenticator app: ")
        term.send(code + "\n")
        await shell_ran(term, r"Code accepted\. Welcome\.")


async def test_gateway_behind_tls_is_trusted_only_through_the_configured_ca_file(
    stack: Stack, tmp_path: Path
) -> None:
    """Over https the module checks the gateway's certificate: with ca_file naming its CA the
    login is approved; without it (system CAs) the TLS check fails and the login is refused."""
    async with enrolled(stack, stack.pam_user) as (_, device), tls_front(stack, tmp_path) as tls:
        url, ca = tls
        users = {stack.pam_user: stack.configured_user(stack.pam_user)}
        stack.configure(users=users, url=url, ca_file=ca)
        with stack.ssh_password() as term:
            number = await password_then_prompt(stack, term)
            (request,) = await device.list_challenges()
            await device.respond(request["id"], "approve", number=number)
            term.send("\n")
            await shell_ran(term)
        stack.configure(users=users, url=url)
        stack.syslog_lines()
        message = r"The sign-in service cannot be reached; login refused\."
        await after_password(stack, message, allowed=False)
    logged = stack.syslog_lines()
    assert any("TLS certificate not trusted" in line for line in logged), logged
