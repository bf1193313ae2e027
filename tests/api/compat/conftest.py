"""Provider SDK clients pointed at the in-process gateway (``base_url`` and key changed only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cerver.api import create_app
from cerver.gateway import Gateway
from tests.conftest import ADMIN_KEY


@pytest.fixture
async def openai_client(gateway: Gateway) -> AsyncIterator[object]:
    """The official ``openai`` SDK on Cerver (SDK retries off, so a failure shows once)."""
    openai = pytest.importorskip("openai", reason="pip install openai")
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport) as http:
        client = openai.AsyncOpenAI(
            base_url="http://cerver.test/v1", api_key=ADMIN_KEY, http_client=http, max_retries=0
        )
        yield client


@pytest.fixture
async def anthropic_client(gateway: Gateway) -> AsyncIterator[object]:
    """The official ``anthropic`` SDK on Cerver (it speaks ``httpx2``)."""
    anthropic = pytest.importorskip("anthropic", reason="pip install anthropic")
    httpx2 = pytest.importorskip("httpx2", reason="pip install anthropic (brings httpx2)")
    transport = httpx2.ASGITransport(app=create_app(gateway))
    async with httpx2.AsyncClient(transport=transport) as http:
        client = anthropic.AsyncAnthropic(
            base_url="http://cerver.test", api_key=ADMIN_KEY, http_client=http, max_retries=0
        )
        yield client
