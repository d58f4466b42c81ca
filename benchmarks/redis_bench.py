"""P2 (stub)."""

from __future__ import annotations

from typing import Any


async def run_p2(profile: Any, server_cpus: Any, aux_cpus: Any) -> dict[str, Any]:
    return {}
