"""Two `cerver serve` processes on one PostgreSQL database: a CLI run started through gateway A
whose model calls arrive at gateway B (A's public URL is B's, as a load balancer may route
them) is served by B from the stored grant and metered to the run.

The CLI (Codex) runs in a sandbox of the fake E2B (a test double whose template carries the
CLIs); the models are the gateways' mock upstream (a test double).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cerver.cli_programs import host_programs
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ServeProcess
from tests.matrix.support import CLI_INSTALLS, cli_image, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]

PROXIED = "POST /v2/proxy/openai/responses 200"


def test_a_cli_run_started_on_one_replica_is_served_and_metered_by_another(
    serve: Callable[..., ServeProcess], database_url: str, tmp_path: Path
) -> None:
    pytest.importorskip("e2b", reason="pip install 'cerver[e2b]'")
    if "codex" not in host_programs():
        what, install = CLI_INSTALLS["codex"]
        pytest.skip(f"{what} is not installed: run `{install}`")
    from tests.compute.fake_e2b import fake_e2b

    with fake_e2b(tmp_path / "e2b", cli_image()) as fake:
        common = {
            "CERVER_DATABASE_URL": database_url,
            "E2B_API_KEY": "e2b_test_key",
            "E2B_API_URL": fake.url,
            "E2B_SANDBOX_URL": fake.url,
        }
        b = serve(port=free_port(), **common)
        a = serve(CERVER_PUBLIC_URL=b.url, **common)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=a.url, headers=headers, timeout=300) as http:
            session = http.post(
                "/v2/sessions",
                json={"user": "replicas", "harness": "codex", "compute": {"provider": "e2b"}},
            ).json()
            sid = session["session_id"]
            result = http.post(
                f"/v2/sessions/{sid}/run-llm",
                json={"input": "run: echo replica > r.txt && cat r.txt"},
            ).json()
            assert result["status"] == "completed", result
            # Metered to the run: in its result (read back from the ledger) and its metrics.
            assert result["usage"]["input_tokens"] > 0
            metrics = http.get(f"/v2/sessions/{sid}/metrics").json()
            [row] = [r for r in metrics["by_harness"] if r["harness"] == "codex"]
            assert row["calls"] == 2
            assert row["input_tokens"] == result["usage"]["input_tokens"]
            assert (
                fake.sandboxes[session["sandbox_id"]].host("/home/user/workspace/r.txt").read_text()
                == "replica\n"
            )
        for gateway in (a, b):
            gateway.proc.terminate()
        assert b.output().count(PROXIED) == 2  # B served the CLI's two model calls
        assert PROXIED not in a.output()  # A started the run and never saw them
