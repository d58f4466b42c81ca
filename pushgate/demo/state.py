"""The demo backend's state, held in one typed app key."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from pushgate.demo.localapi import LocalApi
from pushgate.demo.phones import PhoneBook
from pushgate.settings import Settings


@dataclass
class DemoState:
    """Settings, the demo tenant, the loopback API client and the simulated phones."""

    settings: Settings
    tenant: dict[str, str]
    totp_available: bool
    phones: PhoneBook
    _api: LocalApi | None = field(default=None, repr=False)

    @property
    def api(self) -> LocalApi:
        """The loopback client (opened when the app starts)."""
        if self._api is None:
            raise RuntimeError("the demo backend has not started")
        return self._api

    @api.setter
    def api(self, value: LocalApi | None) -> None:
        self._api = value


DEMO = web.AppKey("pushgate_demo", DemoState)
