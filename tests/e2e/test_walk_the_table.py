"""examples/walk_the_table.py against a real `cerver serve`, a real `cerver relay` (in its own
network namespace when the machine allows it) and the local fake E2B (a test double whose
template carries the CLIs), and a CLI turn on that relay metered by the gateway's proxy.

In netns mode the relay's namespace is joined to the host by one veth pair and has no other
route: the gateway, listening on the host end of it (its ``CERVER_PUBLIC_URL``), is all the
relay can reach (checked: the host's loopback services and the internet are not).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cerver.cli_programs import host_programs
from tests.compute.relay_process import RelayProcess, relay_process
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ServeProcess
from tests.matrix.support import CLI_INSTALLS, cli_image, free_port

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "walk_the_table.py"


def require(*harnesses: str) -> None:
    for harness in harnesses:
        if harness not in host_programs():
            what, install = CLI_INSTALLS[harness]
            message = f"{what} is not installed: run `{install}`"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)


@dataclass
class Table:
    gateway: ServeProcess
    relay: RelayProcess
    relay_compute_id: str
    e2b: object


@pytest.fixture
def table(serve: Callable[..., ServeProcess], tmp_path: Path) -> Iterator[Table]:
    pytest.importorskip("e2b", reason="pip install 'cerver[e2b]'")
    from tests.compute.fake_e2b import fake_e2b

    with relay_process(tmp_path) as relay, fake_e2b(tmp_path / "e2b", cli_image()) as fake:
        port = free_port()
        gateway = serve(
            port=port,
            CERVER_HOST="0.0.0.0",
            CERVER_PUBLIC_URL=f"http://{relay.host_ip}:{port}",
            E2B_API_KEY="e2b_test_key",
            E2B_API_URL=fake.url,
            E2B_SANDBOX_URL=fake.url,
        )
        registered = httpx.post(
            f"{gateway.url}/v2/computes/register",
            json={"label": "walk-relay", "base_url": relay.base_url, "token": relay.token},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=30,
        )
        assert registered.status_code in (200, 201), registered.text
        yield Table(gateway, relay, registered.json()["compute_id"], fake)


def test_one_session_walks_the_table(table: Table) -> None:
    require("claude-code", "codex")
    env = {**os.environ, "CERVER_URL": table.gateway.url, "CERVER_API_KEY": ADMIN_KEY}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), table.relay_compute_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    print(out)
    assert "claude-code · " in out and "codex · " in out and "anthropic · " in out
    turns = [line.split() for line in out.splitlines() if " assistant " in line]
    # Every assistant entry carries the compute it was written on.
    assert {(t[1], t[4]) for t in turns if len(t) > 4} >= {
        ("local", "claude-code"),
        ("e2b", "codex"),
        ("relay", "anthropic"),
    }
    assert out.endswith("local, by Claude Code\ne2b, by Codex\n")
    # The file is in the relay's own workspace of the session, and E2B's sandbox is gone.
    [walked] = list(table.relay.root.glob("sbx_*/walk.txt"))
    assert walked.read_text() == "local, by Claude Code\ne2b, by Codex\n"
    assert not table.e2b.sandboxes  # type: ignore[attr-defined]


def test_a_cli_turn_on_a_relay_reaching_only_the_gateway(table: Table) -> None:
    require("claude-code")
    if table.relay.isolation != "netns":
        pytest.skip("`ip netns` is not permitted here (needs root and iproute2)")
    namespace = table.relay.namespace
    assert namespace is not None
    gateway_port = table.gateway.url.rsplit(":", 1)[1]
    # What the relay's namespace reaches: the gateway, and not the host's loopback services
    # nor anything beyond the host.
    probe = (
        "import socket, sys\n"
        "def ok(h, p):\n"
        "    try: socket.create_connection((h, p), timeout=2).close(); return True\n"
        "    except OSError: return False\n"
        f"print(ok('{table.relay.host_ip}', {gateway_port}), ok('127.0.0.1', 5432),"
        " ok('1.1.1.1', 443))\n"
    )
    reach = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert reach.stdout.split() == ["True", "False", "False"], reach.stdout + reach.stderr

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=table.gateway.url, headers=headers, timeout=300) as http:
        compute = {"provider": "relay", "compute_id": table.relay_compute_id}
        session = http.post(
            "/v2/sessions", json={"user": "netns", "harness": "claude-code", "compute": compute}
        ).json()
        sid = session["session_id"]
        result = http.post(
            f"/v2/sessions/{sid}/run-llm",
            json={"input": "run: echo from-the-namespace > ns.txt && cat ns.txt"},
        ).json()
        assert result["status"] == "completed", result
        assert "from-the-namespace" in result["message"]["content"]
        # The proxy metered the CLI's calls to the run.
        assert result["usage"]["input_tokens"] > 0
        metrics = http.get(f"/v2/sessions/{sid}/metrics").json()
        [row] = [r for r in metrics["by_harness"] if r["harness"] == "claude-code"]
        assert row["calls"] == 2 and row["input_tokens"] == result["usage"]["input_tokens"]
    [written] = list(table.relay.root.glob("sbx_*/ns.txt"))
    assert written.read_text() == "from-the-namespace\n"
