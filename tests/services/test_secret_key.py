"""The gateway's secret key for accounts' credentials: generated once, 0600, checked."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from cerver.errors import NotConfigured
from cerver.services.secret_key import SECRET_KEY_FILE, CredentialCipher, load_or_create


def test_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    key = load_or_create(tmp_path / "data", None)
    path = tmp_path / "data" / SECRET_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(tmp_path / "data", None) == key


def test_a_configured_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    configured = base64.urlsafe_b64encode(os.urandom(32)).decode()
    assert load_or_create(tmp_path, configured) == configured.encode()
    assert not (tmp_path / SECRET_KEY_FILE).exists()


@pytest.mark.parametrize("bad", ["short", "not base64 at all!!", "YWJj"])
def test_a_malformed_key_is_refused_naming_the_setting(tmp_path: Path, bad: str) -> None:
    with pytest.raises(NotConfigured, match="CERVER_SECRET_KEY"):
        load_or_create(tmp_path, bad)


def test_a_token_from_another_key_names_the_shared_key_rule(tmp_path: Path) -> None:
    token = CredentialCipher(load_or_create(tmp_path / "a", None)).encrypt("sk-secret")
    other = CredentialCipher(load_or_create(tmp_path / "b", None))
    with pytest.raises(NotConfigured, match="share one CERVER_SECRET_KEY") as caught:
        other.decrypt(token)
    assert "sk-secret" not in str(caught.value)
