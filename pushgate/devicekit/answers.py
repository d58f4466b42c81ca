"""The signed body of a device's answer to a challenge (SPEC §3), without I/O."""

from __future__ import annotations

from approvals.binding import Decision, decision_challenge
from pushgate.devicekit.authenticator import JSONDict, SoftAuthenticator


def sign_response_body(
    authenticator: SoftAuthenticator,
    nonce: str,
    decision: Decision,
    number: str | None = None,
) -> JSONDict:
    """Sign the decision binding and build ``POST /v1/device/challenges/{id}/response``'s body."""
    assertion = authenticator.assert_challenge(decision_challenge(nonce, decision, number))
    body: JSONDict = {"decision": decision, "assertion": assertion}
    if number is not None:
        body["number"] = number
    return body
