"""Enrollment codes and device records in Redis."""

from __future__ import annotations

from approvals.ids import shard_of
from approvals.records import DeviceRecord
from approvals.store import keys
from approvals.store.backend import Backend, decode_hash
from approvals.store.users import DAY_MS, REMINDER_LEAD_MS


class DeviceStore:
    """The only code that touches enrollment and device keys."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def start_enrollment(
        self,
        *,
        tenant: str,
        user_id: str,
        enrollment_id: str,
        code_digest: str,
        ttl_s: int,
        period_days: int,
    ) -> None:
        """Store a new single-use enrollment code (by digest) and create the user if new
        (starting the enrollment period of ``period_days``)."""
        uk = self._b.user_keys(tenant, user_id)
        await self._b.scripts.start_enrollment(
            keys=[keys.enrollment(uk.shard, code_digest), uk.user, keys.enrollment_index(uk.shard)],
            args=[
                self._b.shift_ms,
                ttl_s * 1000,
                tenant,
                user_id,
                enrollment_id,
                period_days * DAY_MS,
                REMINDER_LEAD_MS,
                keys.enrollment_member(tenant, user_id),
            ],
        )

    async def get_enrollment(self, shard: int, code_digest: str) -> dict[str, str] | None:
        """The enrollment record for a code digest, or None when unknown or expired."""
        record = decode_hash(await self._b.redis.hgetall(keys.enrollment(shard, code_digest)))
        return record or None

    async def offer_registration(self, shard: int, code_digest: str, challenge: str) -> bool:
        """Remember a registration challenge for the code; False if the code is gone."""
        done = await self._b.scripts.offer_enrollment(
            keys=[keys.enrollment(shard, code_digest)], args=[challenge]
        )
        return int(done) == 1

    async def consume_enrollment(
        self,
        *,
        shard: int,
        code_digest: str,
        challenge: str,
        device: DeviceRecord,
    ) -> bool:
        """Create the device if, and only if, this call consumes the code."""
        tenant, user_id, device_id = device.tenant, device.user_id, device.id
        uk = self._b.user_keys(tenant, user_id)
        fields: list[str] = []
        for name, value in device.to_hash().items():
            fields += [name, value]
        done = await self._b.durability.run(
            self._b.scripts.consume_enrollment,
            [
                keys.enrollment(shard, code_digest),
                uk.user,
                uk.devices,
                uk.active_devices,
                keys.device(uk.shard, device_id),
                keys.outbox(uk.shard),
            ],
            [
                self._b.shift_ms,
                challenge,
                device_id,
                tenant,
                user_id,
                self._b.outbox_maxlen,
                *fields,
            ],
        )
        return int(done) == 1

    async def get(self, device_id: str) -> DeviceRecord | None:
        """A device record by id, or None."""
        shard = shard_of(device_id, self._b.shards)
        if shard is None:
            return None
        record = decode_hash(await self._b.redis.hgetall(keys.device(shard, device_id)))
        return DeviceRecord.from_hash(record) if record else None

    async def list_for_user(self, tenant: str, user_id: str) -> list[DeviceRecord]:
        """Every device of a user (removed devices are gone)."""
        uk = self._b.user_keys(tenant, user_id)
        return await self._records_in(uk.shard, uk.devices)

    async def active_for_user(self, tenant: str, user_id: str) -> list[DeviceRecord]:
        """The user's devices that can currently be reached."""
        uk = self._b.user_keys(tenant, user_id)
        return await self._records_in(uk.shard, uk.active_devices)

    async def _records_in(self, shard: int, id_set: str) -> list[DeviceRecord]:
        ids = sorted(await self._b.redis.smembers(id_set))
        if not ids:
            return []
        pipe = self._b.redis.pipeline(transaction=False)
        for device_id in ids:
            pipe.hgetall(keys.device(shard, device_id))
        records = (decode_hash(x) for x in await pipe.execute())
        return [DeviceRecord.from_hash(r) for r in records if r]

    async def remove(self, *, tenant: str, user_id: str, device_id: str, by: str) -> bool:
        """Delete a device; False when it is not this user's."""
        uk = self._b.user_keys(tenant, user_id)
        done = await self._b.durability.run(
            self._b.scripts.remove_device,
            [
                keys.device(uk.shard, device_id),
                uk.devices,
                uk.active_devices,
                keys.outbox(uk.shard),
            ],
            [self._b.shift_ms, device_id, tenant, user_id, self._b.outbox_maxlen, by],
        )
        return int(done) == 1

    async def set_push_token(
        self,
        record: DeviceRecord,
        *,
        platform: str,
        push_token: str,
        app_bundle_id: str,
    ) -> bool:
        """Replace a device's push route and mark it reachable again."""
        uk = self._b.user_keys(record.tenant, record.user_id)
        done = await self._b.scripts.set_push_token(
            keys=[keys.device(uk.shard, record.id), uk.active_devices],
            args=[record.id, platform, push_token, app_bundle_id, self._b.shift_ms],
        )
        return int(done) == 1

    async def invalidate_token(
        self, *, tenant: str, user_id: str, device_id: str, token: str, reason: str
    ) -> bool:
        """Mark a dead token invalid (once) and emit ``device.token_invalid``."""
        uk = self._b.user_keys(tenant, user_id)
        done = await self._b.scripts.invalidate_token(
            keys=[keys.device(uk.shard, device_id), uk.active_devices, keys.outbox(uk.shard)],
            args=[device_id, token, self._b.shift_ms, self._b.outbox_maxlen, reason],
        )
        return int(done) == 1
