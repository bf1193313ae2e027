"""Shared fixtures: a store on SQLite or PostgreSQL, a started gateway, an in-process client.

Every gateway under test reaches models through one mock upstream (a test double) shared by
the test session and reset before each test. Every call is priced from the fixture price table
``tests/prices.json`` (in-process, and through ``CERVER_PRICES_FILE`` in the gateway processes
the tests start), so no test depends on price data that changes upstream.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cerver import pricing
from cerver.api import create_app
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.settings import Settings
from cerver.testing.mock_upstream import MockUpstream

ADMIN_KEY = "ck_test_admin_key_0123456789abcdef"
PRICES_FILE = Path(__file__).parent / "prices.json"


def pytest_configure(config: pytest.Config) -> None:
    os.environ[pricing.PRICES_FILE_ENV] = str(PRICES_FILE)


@pytest.fixture(autouse=True)
def fixture_prices() -> Iterator[pricing.PriceTable]:
    """Only the fixture table prices calls in-process: unknown models stay unknown."""
    table = pricing.PriceTable.from_file(PRICES_FILE)
    with pricing.use(pricing.Pricer([table])):
        yield table


PG_ADMIN_URL = os.environ.get("CERVER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _reset_mock(request: pytest.FixtureRequest) -> None:
    if "mock_upstream" in request.fixturenames:
        request.getfixturevalue("mock_upstream").reset()


async def _pg_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped after."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cerver.db'}"
        return
    import asyncpg

    if not await _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI must start it).")
        pytest.skip(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL}: start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`."
        )
    name = f"cerver_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cerver.db'}"


def make_settings(
    data_dir: Path, database_url: str, upstream: MockUpstream, **overrides
) -> Settings:
    values = {
        "data_dir": data_dir,
        "database_url": database_url,
        "admin_key": ADMIN_KEY,
        "mock_upstream": False,
        "anthropic_base_url": upstream.anthropic_base_url,
        "anthropic_api_key": "test-anthropic-key",
        "openai_base_url": upstream.openai_base_url,
        "openai_api_key": "test-openai-key",
        "gemini_base_url": upstream.gemini_base_url,
        "gemini_api_key": "test-gemini-key",
        # One call per model step, so a scripted failure fails the turn; tests of the retry
        # layer pass their own.
        "upstream_max_attempts": 1,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def gateway(
    tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> AsyncIterator[Gateway]:
    """A started gateway on SQLite whose harnesses call the shared mock upstream."""
    gw = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[AsyncClient]:
    """An admin client talking to ``gateway`` in-process (ASGI, no sockets)."""
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with AsyncClient("http://cerver.test", ADMIN_KEY, transport=transport) as c:
        yield c


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A raw httpx client (admin key) for status-code and header checks."""
    transport = httpx.ASGITransport(app=create_app(gateway))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://cerver.test", headers=headers
    ) as c:
        yield c
