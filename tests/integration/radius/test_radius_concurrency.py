"""Nine o'clock: many VPN logins wait for phones at once without holding each other up."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from pushgate.devicekit.client import DeviceClient
from tests.integration.processes import wait_until
from tests.integration.radius.radclient import radclient, radclient_parallel
from tests.integration.radius.stack import SECRET, Scenario, log_events, new_user

USERS = 4
PUSHES_PER_USER = 50  # 200 pushes waiting at once


async def test_200_waiting_pushes_do_not_block_each_other_or_a_totp_login(
    scenario: Scenario, tmp_path: Path
) -> None:
    """radclient sends 200 push logins at once: all 200 challenges are created and waited on
    together, a TOTP login sent meanwhile is accepted while all 200 are still pending, and once
    the phones answer every request gets its own answer (100 accepted, 100 rejected)."""
    await scenario.policy(
        number_matching=False,
        dedupe_seconds=0,
        max_pushes_per_window=100,
        push_window_seconds=60,
        max_unanswered_pushes=100,
    )
    users = [new_user() for _ in range(USERS)]
    phones = await asyncio.gather(*(scenario.phone(user) for user in users))
    totp_user = new_user()
    app = await scenario.totp(totp_user)
    port = scenario.stack.radius_port
    packets = [
        {"User-Name": user, "User-Password": "push", "Message-Authenticator": "0x00"}
        for user in users
        for _ in range(PUSHES_PER_USER)
    ]
    waiting_before = len(log_events(scenario.stack.radius, "radius.waiting"))
    logins = asyncio.create_task(
        radclient_parallel(port, SECRET, packets, tmp_path, timeout=60, retries=1)
    )
    pending = await asyncio.gather(*(scenario.pending(p, PUSHES_PER_USER) for p in phones))
    assert [len(items) for items in pending] == [PUSHES_PER_USER] * USERS

    async def all_waiting() -> bool:
        waiting = log_events(scenario.stack.radius, "radius.waiting")
        return len(waiting) - waiting_before >= len(packets)

    await wait_until(all_waiting, "200 requests waiting for phones", timeout=30)

    totp = {"User-Name": totp_user, "User-Password": await app.fresh_code()}
    reply = await radclient(port, SECRET, {**totp, "Message-Authenticator": "0x00"})
    assert reply.code == "Access-Accept", reply.output
    still = await asyncio.gather(*(p.list_challenges() for p in phones))
    assert sum(len(items) for items in still) == len(packets)
    assert not logins.done()

    async def answer_all(phone: DeviceClient, items: list[dict[str, Any]]) -> None:
        for n, item in enumerate(items):  # one phone answers one prompt after another
            decision = "approve" if n % 2 == 0 else "deny"
            await phone.respond(item["id"], decision, nonce=item["nonce"])

    await asyncio.gather(*map(answer_all, phones, pending))
    replies = await logins
    assert Counter(r.code for r in replies) == {"Access-Accept": 100, "Access-Reject": 100}
