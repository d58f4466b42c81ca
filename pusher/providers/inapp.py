"""The in-app channel: challenges published to the user's device websockets (all replicas)."""

from __future__ import annotations

import json
from typing import Any

from approvals.challenge import device_view


class InAppChannel:
    """Publishes new challenges on the user's device channel; gateways relay them to apps."""

    name = "inapp"

    def __init__(self, redis: Any, *, sharded: bool = False) -> None:
        self._redis = redis
        self._sharded = sharded

    async def announce(self, channel: str, record: dict[str, str]) -> int:
        """Publish the device view of a challenge; returns how many gateways received it."""
        message = json.dumps({"type": "challenge", "challenge": device_view(record)})
        if self._sharded:
            return int(await self._redis.spublish(channel, message))
        return int(await self._redis.publish(channel, message))
