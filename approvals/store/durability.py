"""Writes that must survive a failover: ``WAIT`` for replicas after them, fail closed otherwise.

Redis replicates asynchronously: a write a primary acknowledged is lost if the primary dies
before sending it to a replica that then takes over. The state changes a client is told
about and must never see undone (an answer that ends a challenge, a used TOTP step, a failed
attempt counted towards a lockout, a consumed enrollment code, a revocation) are therefore sent
with ``WAIT <replicas> <timeout>`` on the same connection, right behind them; when fewer
replicas acknowledge in time the caller gets :class:`ReplicaAckTimeout` (an answer of 503),
never a success that a failover could take back. The write itself stays on the primary, so a
retry finds it applied (``409 challenge_already_decided``, ``code_replayed``).

A waiting portal reads an ended challenge written by another request; before it is told, its
gateway confirms the state with :meth:`Durability.confirm`: a write to the record after the
read, on the same connection as a ``WAIT`` (the replication stream is ordered, so a replica
that has the later write has the ended state too).

On a single Redis without replicas ``wait_replicas`` is 0 and nothing waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import MovedError, NoScriptError, RedisError

CONFIRM_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= ARGV[1] then return status or false end
redis.call('HINCRBY', KEYS[1], 'confirmations', 1)
return status
"""


class ReplicaAckTimeout(RedisError):
    """Fewer replicas than required acknowledged a write in time: it may not survive a
    failover, so it must not be reported as done (the gateway answers 503)."""


class Durability:
    """Runs scripts whose effect must survive a failover, and confirms states read back."""

    def __init__(self, redis: Any, *, cluster: bool, replicas: int, timeout_ms: int) -> None:
        self._redis = redis
        self._cluster = cluster
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self._confirm = redis.register_script(CONFIRM_SCRIPT)

    async def run(self, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a registered script, then wait for the replicas (one round trip)."""
        if self.replicas == 0:
            return await script(keys=keys, args=args)
        for attempt in range(3):
            reply, acked, where = await self._with_wait(
                keys[0], "EVALSHA", script.sha, len(keys), *keys, *args
            )
            if isinstance(reply, NoScriptError) and attempt < 2:
                await self._redis.script_load(script.script)  # every primary on a Cluster
                continue
            if isinstance(reply, MovedError) and attempt < 2:
                await self._redis.nodes_manager.move_slot(reply)  # a failover moved the slot
                continue
            return self._checked(reply, acked, where)
        raise ReplicaAckTimeout("the script could not be run with its replica wait")

    async def command(self, key: str, *args: Any) -> Any:
        """Run one plain write command on ``key``, then wait for the replicas."""
        if self.replicas == 0:
            return await self._redis.execute_command(*args)
        for attempt in range(3):
            reply, acked, where = await self._with_wait(key, *args)
            if isinstance(reply, MovedError) and attempt < 2:
                await self._redis.nodes_manager.move_slot(reply)
                continue
            return self._checked(reply, acked, where)
        raise ReplicaAckTimeout("the command could not be run with its replica wait")

    async def confirm(self, record_key: str, status: str) -> bool:
        """Whether the record still has ``status`` and that state has reached the replicas
        (ReplicaAckTimeout when they did not acknowledge in time)."""
        if self.replicas == 0:
            return True
        reply = await self.run(self._confirm, [record_key], [status])
        return bool(reply == status)

    def _checked(self, reply: Any, acked: Any, where: str) -> Any:
        if isinstance(reply, Exception):
            raise reply
        if isinstance(acked, Exception):
            raise acked
        if int(acked) < self.replicas:
            raise ReplicaAckTimeout(
                f"{acked} of {self.replicas} replicas of {where} acknowledged"
                f" within {self.timeout_ms} ms"
            )
        return reply

    async def _with_wait(self, key: str, *command: Any) -> tuple[Any, Any, str]:
        """The command and WAIT on one connection to the primary that owns ``key``. Cluster
        redirections are not followed inside (a WAIT on another connection would say
        nothing about the command's write); the caller refreshes the map and tries again."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.execute_command(*command)
        if self._cluster:
            await self._redis.initialize()  # at once when the slot map is known
            node = self._redis.get_node_from_key(key)
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms, target_nodes=node)
            reply, acked = await pipe.execute(raise_on_error=False, allow_redirections=False)
            return reply, acked, node.name
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        reply, acked = await pipe.execute(raise_on_error=False)
        return reply, acked, "the primary"
