"""The gateway's secret key, which encrypts accounts' provider credentials at rest.

``CERVER_SECRET_KEY`` (a Fernet key: 32 url-safe base64-encoded bytes) when set; otherwise
one generated on first start into ``<data dir>/secret_key`` (mode 0600), next to the admin
key's ``credentials`` file. Every gateway process sharing a database must use the same key:
set ``CERVER_SECRET_KEY`` on each replica.

``cryptography`` (≈0.2 s to import) loads on the first encryption or decryption, not at
start-up: a Fernet key is 32 random bytes in url-safe base64, made and checked here.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cerver.errors import NotConfigured

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["SECRET_KEY_FILE", "CredentialCipher", "load_or_create"]

SECRET_KEY_FILE: Final = "secret_key"


def load_or_create(data_dir: Path, configured: str | None) -> bytes:
    """The configured key, else the data directory's, generated there if missing.

    Raises:
        NotConfigured: ``configured`` (or the file) is not a valid Fernet key.
    """
    if configured:
        key = configured.strip().encode()
    else:
        path = data_dir / SECRET_KEY_FILE
        if path.exists():
            key = path.read_bytes().strip()
        else:
            key = base64.urlsafe_b64encode(os.urandom(32))
            data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting together never both write (the loser reads).
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                key = path.read_bytes().strip()
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(key + b"\n")
    try:
        valid = len(base64.urlsafe_b64decode(key)) == 32
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise NotConfigured(
            "CERVER_SECRET_KEY (or <data dir>/secret_key) is not a Fernet key: generate one "
            'with `python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`.',
            context={"setting": "CERVER_SECRET_KEY"},
        )
    return key


class CredentialCipher:
    """Encrypts and decrypts provider keys with the gateway's secret key (Fernet:
    AES-128-CBC with an HMAC-SHA256, from the ``cryptography`` package)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @cached_property
    def _fernet(self) -> Fernet:
        from cryptography.fernet import Fernet

        return Fernet(self._key)

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The clear secret.

        Raises:
            NotConfigured: the token was encrypted with another secret key (a replica with a
                different ``CERVER_SECRET_KEY``, or a data directory that lost its key).
        """
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise NotConfigured(
                "A stored provider credential cannot be decrypted with this gateway's secret "
                "key: every gateway process must share one CERVER_SECRET_KEY. Store the "
                "credential again (PUT /v2/account/credentials/{provider}) or restore the key.",
                context={"setting": "CERVER_SECRET_KEY"},
            ) from exc
