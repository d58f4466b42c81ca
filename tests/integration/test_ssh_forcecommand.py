"""SSH logins through the ForceCommand (``pushgate-ssh login``): key authentication first,
then the sign-in dialogue on the session's terminal, then the user's shell or command."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from pushgate.embedded import EmbeddedRedis
from tests.integration.ssh_stack import (
    HOST,
    NUMBER,
    Stack,
    active_totp,
    enrolled,
    expect,
    finish,
    new_user_id,
    next_request,
    ssh_stack,
)
from tests.integration.sshkit import Terminal

pytestmark = pytest.mark.timeout(90)

WAITING = r"\(waiting \d+ s; type a 6-digit code instead, press Enter to resend, Ctrl-C to cancel\)"
RAN = "COMMAND-RAN"


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ssh_stack(redis_server, tmp_path_factory.mktemp("ssh-fc")) as running:
        yield running


async def ended_without_running(term: Terminal, line: str) -> None:
    """The terminal shows ``line``, the session ends with an error and nothing ran."""
    await expect(term, line)
    assert await finish(term) != 0
    assert RAN not in term.output


async def test_approval_runs_the_original_command_and_the_phone_sees_the_client(
    stack: Stack,
) -> None:
    """``ssh -t host command``: the number shows on the terminal, the phone sees "SSH on
    build-01" and the client's address (passed through sudo), the approval runs the command."""
    async with enrolled(stack, stack.key_user) as (_, device), device.websocket() as channel:
        with stack.ssh_key(f"echo {RAN}-$((6*7)) as $(id -un)") as term:
            number = (await expect(term, NUMBER)).group(1)
            await expect(term, WAITING)
            request = await next_request(channel)
            assert request["app_name"] == f"SSH on {HOST}"
            assert request["context"]["ip"] == "127.0.0.1"
            await device.respond(request["id"], "approve", number=number)
            await expect(term, r'Approved on "Pixel 8"\. Welcome\.')
            await expect(term, f"{RAN}-42 as {stack.key_user}")
            assert await finish(term) == 0


async def test_code_typed_while_waiting_opens_the_login_shell(stack: Stack) -> None:
    """No command: a code typed at the waiting line approves, and the user's login shell starts
    on the same terminal."""
    async with enrolled(stack, stack.key_user) as (portal, _):
        code = await active_totp(portal, stack.configured_user(stack.key_user))
    with stack.ssh_key(None) as term:
        await expect(term, WAITING)
        term.send(code + "\n")
        await expect(term, r"Code accepted\. Welcome\.")
        await expect(term, r"\$ ")  # the shell's prompt: typing before it would be lost
        term.send("echo shell=$0 user=$(id -un); exit\n")
        await expect(term, rf"shell=-bash user={stack.key_user}")
        assert await finish(term) == 0


async def test_enter_sends_a_new_request_with_a_new_number(stack: Stack) -> None:
    """Enter while waiting cancels the request and sends a new one; approving the new one
    with its own number lets the user in."""
    async with enrolled(stack, stack.key_user) as (portal, device):
        with stack.ssh_key(f"echo {RAN}") as term:
            await expect(term, NUMBER)
            await expect(term, WAITING)
            (first,) = await device.list_challenges()
            term.send("\n")
            number = (await expect(term, NUMBER)).group(1)
            await expect(term, WAITING)
            (second,) = await device.list_challenges()
            assert second["id"] != first["id"]
            cancelled = await portal.call("GET", f"/v1/challenges/{first['id']}")
            assert cancelled.body["status"] == "cancelled"
            await device.respond(second["id"], "approve", number=number)
            await expect(term, RAN)
            assert await finish(term) == 0


async def test_without_a_terminal_only_the_phone_approves(stack: Stack) -> None:
    """``ssh host command`` without a tty: the dialogue goes to stderr, stdin is left to the
    command, and the approval runs the command."""
    async with enrolled(stack, stack.key_user) as (_, device):
        with stack.ssh_key(f"echo {RAN}; test -t 0 || echo NO-TTY", tty=False) as term:
            number = (await expect(term, NUMBER)).group(1)
            (request,) = await device.list_challenges()
            await device.respond(request["id"], "approve", number=number)
            await expect(term, RAN)
            await expect(term, "NO-TTY")
            assert await finish(term) == 0
            assert "press Enter" not in term.output


async def test_denial_ends_the_session_without_a_shell(stack: Stack) -> None:
    """A denial on the phone is shown in one line and the session closes; nothing runs."""
    async with enrolled(stack, stack.key_user) as (_, device):
        with stack.ssh_key(f"echo {RAN}") as term:
            number = (await expect(term, NUMBER)).group(1)
            (request,) = await device.list_challenges()
            await device.respond(request["id"], "deny", number=number)
            await ended_without_running(term, r"Denied on your phone; login refused\.")


async def test_user_without_a_device_is_refused(stack: Stack) -> None:
    """A user with no phone and no authenticator app gets the reason and no shell."""
    stack.configure(users={stack.key_user: new_user_id()})
    with stack.ssh_key(f"echo {RAN}") as term:
        message = rf"No phone or authenticator app is set up for {stack.key_user}"
        await ended_without_running(term, message)


async def test_ctrl_c_while_waiting_cancels_the_request(stack: Stack) -> None:
    """Ctrl-C at the waiting line cancels the request on pushgate and ends the session."""
    async with enrolled(stack, stack.key_user) as (portal, device):
        with stack.ssh_key(f"echo {RAN}") as term:
            await expect(term, WAITING)
            (request,) = await device.list_challenges()
            term.send("\x03")
            await ended_without_running(term, r"Sign-in cancelled\.")
        view = await portal.call("GET", f"/v1/challenges/{request['id']}")
        assert view.body["status"] == "cancelled"


def test_sudoers_rule_runs_nothing_but_the_exact_check(stack: Stack) -> None:
    """A user may run the check through sudo only with its fixed arguments: naming another user
    (or anything else) is refused by sudo itself."""
    check = f"{stack.launcher} verify --config {stack.config}"
    for argv in (f"{check} --user root", f"{stack.launcher} check", "/bin/true"):
        done = subprocess.run(
            ["su", "-", stack.key_user, "-c", f"sudo -n {argv}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 1, (argv, done.stdout, done.stderr)
        assert "password is required" in done.stderr, (argv, done.stderr)
