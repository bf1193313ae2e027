"""Fixtures of the model proxy's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream
from tests.conftest import make_settings


@pytest.fixture
async def gateways(
    tmp_path: Path, database_url: str, mock_upstream: MockUpstream
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two gateway instances (replicas) on one store."""
    pair = [Gateway(make_settings(tmp_path / n, database_url, mock_upstream)) for n in "ab"]
    for gateway in pair:
        await gateway.start()
    try:
        yield pair[0], pair[1]
    finally:
        for gateway in pair:
            await gateway.stop()
