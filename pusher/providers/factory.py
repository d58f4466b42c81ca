"""Build the push providers the settings ask for (none when no credentials are set)."""

from __future__ import annotations

from pathlib import Path

from pusher.providers.apns import ApnsProvider
from pusher.providers.base import PushProvider
from pusher.providers.fcm import FcmProvider
from pushgate.settings import Settings


def build_providers(settings: Settings) -> dict[str, PushProvider]:
    """APNs when a .p8 key is configured, FCM when a service-account file is configured."""
    providers: dict[str, PushProvider] = {}
    if settings.apns_key_file:
        if not (settings.apns_key_id and settings.apns_team_id and settings.apns_topic):
            raise ValueError(
                "PUSHGATE_APNS_KEY_ID, PUSHGATE_APNS_TEAM_ID and PUSHGATE_APNS_TOPIC are "
                "required with PUSHGATE_APNS_KEY_FILE"
            )
        providers["apns"] = ApnsProvider(
            key=Path(settings.apns_key_file).read_text(),
            key_id=settings.apns_key_id,
            team_id=settings.apns_team_id,
            topic=settings.apns_topic,
            sandbox=settings.apns_sandbox,
            endpoint=settings.apns_endpoint,
            ca_file=settings.apns_ca_file,
            timeout=settings.push_timeout_seconds,
        )
    if settings.fcm_credentials_file:
        providers["fcm"] = FcmProvider(
            service_account_file=settings.fcm_credentials_file,
            project_id=settings.fcm_project_id,
            endpoint=settings.fcm_endpoint,
            ca_file=settings.fcm_ca_file,
            timeout=settings.push_timeout_seconds,
        )
    return providers
