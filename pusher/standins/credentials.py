"""Test credentials shaped like the real ones: an APNs .p8 key and a Google service account."""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

_ID_ALPHABET = string.ascii_uppercase + string.digits


def _apple_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


@dataclass(frozen=True, slots=True)
class ApnsKey:
    """An APNs auth key as Apple hands it out: .p8 PEM text, key id and team id."""

    pem: str  # PKCS#8 PEM of an EC P-256 private key (the .p8 file's content)
    key_id: str
    team_id: str

    @property
    def public_pem(self) -> str:
        """The public half, what the APNs stand-in verifies provider tokens with."""
        key = serialization.load_pem_private_key(self.pem.encode(), password=None)
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def write(self, directory: Path) -> Path:
        """Write ``AuthKey_<key_id>.p8`` into ``directory`` and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"AuthKey_{self.key_id}.p8"
        path.write_text(self.pem)
        path.chmod(0o600)
        return path


def make_apns_key(*, key_id: str | None = None, team_id: str | None = None) -> ApnsKey:
    """A fresh EC P-256 key in .p8 form with random 10-character key and team ids."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ApnsKey(pem=pem, key_id=key_id or _apple_id(), team_id=team_id or _apple_id())


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A Google service account: the JSON Google hands out plus where it was written."""

    info: dict[str, str]
    path: Path

    @property
    def client_email(self) -> str:
        return self.info["client_email"]

    @property
    def project_id(self) -> str:
        return self.info["project_id"]

    @property
    def public_pem(self) -> str:
        """The public half, what the FCM stand-in verifies token requests with."""
        key = serialization.load_pem_private_key(self.info["private_key"].encode(), None)
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


def make_service_account(
    path: Path, *, token_uri: str, project_id: str = "pushgate-test"
) -> ServiceAccount:
    """Write a service-account JSON with a fresh RSA key whose ``token_uri`` is ``token_uri``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    name = f"pusher-{secrets.token_hex(3)}"
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"{name}@{project_id}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))
    path.chmod(0o600)
    return ServiceAccount(info=info, path=path)
