"""The gateway, the worker and the CLI open Redis through one function, so they agree on it."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from pusher.worker import Worker
from pushgate.settings import SettingsError
from tests.conftest import TEST_SECRET_KEY, make_settings


def test_gateway_and_worker_refuse_a_missing_redis_url_with_the_same_error() -> None:
    """Without PUSHGATE_REDIS_URL both refuse to build, naming the variable the same way."""
    settings = make_settings("redis://unused", secret_key=TEST_SECRET_KEY).model_copy(
        update={"redis_url": None}
    )
    with pytest.raises(SettingsError) as gateway:
        create_app(settings)
    with pytest.raises(SettingsError) as worker:
        Worker(settings)
    assert str(gateway.value) == str(worker.value)
    assert "PUSHGATE_REDIS_URL" in str(gateway.value)
