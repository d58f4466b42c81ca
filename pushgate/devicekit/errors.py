"""Errors a device sees from the pushgate API."""

from __future__ import annotations

from typing import Any


class DeviceApiError(Exception):
    """A non-2xx answer, carrying its RFC 9457 problem body."""

    def __init__(
        self, status: int, problem: dict[str, Any], *, retry_after: float | None = None
    ) -> None:
        """Keep the HTTP status, the problem object and any ``Retry-After`` seconds."""
        self.status = status
        self.problem = problem
        self.retry_after = retry_after
        super().__init__(f"{status} {self.code or 'error'}: {self.detail or problem.get('title')}")

    @property
    def code(self) -> str | None:
        """The problem's stable ``code`` (e.g. ``webauthn_invalid``), if any."""
        code = self.problem.get("code")
        return code if isinstance(code, str) else None

    @property
    def detail(self) -> str | None:
        """The problem's human-readable ``detail``, if any."""
        detail = self.problem.get("detail")
        return detail if isinstance(detail, str) else None
