"""modal, daytona and vercel at their SDK boundary: construction, credentials, the catalog
status and error translation. Their commands and files are proven with the real SDKs against
local wire-level doubles in test_modal.py, test_daytona.py and test_vercel.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from cerver.errors import NotConfigured
from cerver.placement import Catalog
from cerver.registry import compute_registry
from compute.base import SandboxSpec

VENDORS = {
    "modal": ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"),
    "daytona": ("DAYTONA_API_KEY",),
    "vercel": ("VERCEL_TOKEN", "VERCEL_TEAM_ID", "VERCEL_PROJECT_ID"),
}


def _require_sdk(name: str) -> None:
    if not _installed(name):
        pytest.skip(f"the {name} SDK is not installed: pip install 'cerver[{name}]'")


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for variables in VENDORS.values():
        for name in variables:
            monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_without_credentials_construction_names_the_variables(
    name: str, no_credentials: None
) -> None:
    _require_sdk(name)
    cls = compute_registry.load(name)

    with pytest.raises(NotConfigured) as info:
        cls()
    for variable in VENDORS[name]:
        assert variable in info.value.message


def test_catalog_lists_them_as_needs_credentials(no_credentials: None) -> None:
    entries = {e.name: e for e in Catalog().entries({})}
    for name, variables in VENDORS.items():
        expected = "needs_credentials" if _installed(name) else "missing_sdk"
        assert entries[name].status == expected
        if expected == "needs_credentials":
            assert entries[name].missing == variables
        assert not entries[name].executable


def test_catalog_goes_live_when_credentials_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_sdk("daytona")
    monkeypatch.setenv("DAYTONA_API_KEY", "dtn_test")
    assert {e.name: e for e in Catalog().entries({})}["daytona"].status == "live"


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class _Refuse(BaseHTTPRequestHandler):
    """TEST DOUBLE: an API endpoint that refuses every request with 401."""

    def _refuse(self) -> None:
        body = b'{"message": "invalid api key", "statusCode": 401}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _refuse

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_daytona_rejected_key_is_not_configured(refusing_api: str) -> None:
    _require_sdk("daytona")
    from compute.daytona import DaytonaCompute

    compute = DaytonaCompute("dtn_wrong", api_url=refusing_api)
    try:
        with pytest.raises(NotConfigured, match="DAYTONA_API_KEY"):
            await compute.create(SandboxSpec(session_id="sess_x"))
    finally:
        await compute.aclose()
