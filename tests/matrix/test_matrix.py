"""The harness × compute matrix: one tool-using turn of every harness on every compute that can
execute here, its side effect checked in *that* sandbox, written to ``docs/provider-matrix.md``
(which the README's provider table must equal: ``test_readme.py``).

Each cell creates a session on the compute through a gateway served at its public URL, asks
for ``run: echo <marker> > matrix.txt && cat matrix.txt`` (the mock upstream, a test double,
answers with a call of the harness's shell tool, then with the tool's output), and checks:
the turn completed; the tool call and result carry the harness's provenance; the file is in
the workspace of the session's sandbox as the compute itself holds it (the double's or
relay's directory for that sandbox id, not the gateway's view); and for a CLI harness, that
the model proxy metered its calls to the run. A cell this machine cannot run is skipped with
what is missing; in CI (which installs everything) a skip is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cerver.testing.mock_upstream import MockUpstream
from tests.matrix.matrix_file import MATRIX_FILE, Cell, render
from tests.matrix.support import (
    CLI_INSTALLS,
    COMPUTES,
    HARNESSES,
    Doubles,
    Served,
    doubles,
    missing_for,
    served_gateway,
)

RESULTS: dict[tuple[str, str], Cell] = {}
MODELS = {"litellm": "openai/gpt-5"}
"""Models other than the harness's default: litellm's default (xAI) has no mock endpoint in
the test settings."""


@pytest.fixture(scope="module")
def vendors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doubles]:
    with doubles(tmp_path_factory.mktemp("vendors")) as found:
        yield found


def workspace_file(served: Served, vendors: Doubles, session: dict[str, Any], name: str) -> Path:
    """Where the compute itself keeps ``name`` of the session's workspace (a host path)."""
    provider, sandbox_id = session["provider"], session["sandbox_id"]
    if provider == "local":
        return served.gateway.settings.resolved_data_dir / "sandboxes" / sandbox_id / name
    if provider == "relay":
        return served.relay_root / sandbox_id.partition("/")[2] / name
    fake = vendors.fakes[provider]
    if provider == "e2b":
        from compute.e2b import WORKSPACE

        return fake.sandboxes[sandbox_id].host(f"{WORKSPACE}/{name}")
    workspaces = {
        "modal": "/workspace",
        "daytona": "/home/daytona/workspace",
        "vercel": "/vercel/sandbox/workspace",
    }
    return fake.sandboxes[sandbox_id].host(f"{workspaces[provider]}/{name}")


@pytest.mark.parametrize("compute", COMPUTES)
@pytest.mark.parametrize("harness", HARNESSES)
async def test_one_tool_using_turn(
    harness: str,
    compute: str,
    vendors: Doubles,
    tmp_path: Path,
    mock_upstream: MockUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = missing_for(harness, compute, vendors)
    if missing is not None:
        RESULTS[harness, compute] = Cell("skip", missing)
        if os.environ.get("CI"):
            pytest.fail(f"CI installs everything the matrix needs, yet {missing}")
        pytest.skip(missing)
    RESULTS[harness, compute] = Cell("fail", "the cell did not finish")
    for name, value in vendors.env.items():
        monkeypatch.setenv(name, value)

    async with served_gateway(tmp_path, mock_upstream) as served:
        client = served.client
        fields = {"model": MODELS[harness]} if harness in MODELS else {}
        session = await client.create_session(
            user="matrix", harness=harness, compute=served.compute(compute), **fields
        )
        assert session["provider"] == compute
        sid, marker = session["session_id"], f"cell-{harness}-{compute}"
        result = await client.run_llm(sid, f"run: echo {marker} > matrix.txt && cat matrix.txt")

        assert result["status"] == "completed", result
        entries = (await client.messages(sid))["messages"]
        calls = [e for e in entries if e["kind"] == "tool_call"]
        outputs = [e for e in entries if e["kind"] == "tool_result"]
        assert calls and outputs, [(e["role"], e["kind"]) for e in entries]
        for entry in [*calls, *outputs, result["message"]]:
            assert entry["harness"] == harness and entry["run_id"] == result["run_id"]
        assert marker in outputs[0]["content"]
        # The side effect is in that sandbox: the compute's own copy of its workspace.
        assert workspace_file(served, vendors, session, "matrix.txt").read_text() == f"{marker}\n"
        if harness in CLI_INSTALLS:  # its model calls went through the proxy, metered
            assert result["usage"]["input_tokens"] > 0
            assert len(served.gateway.proxy.grants) == 0
    RESULTS[harness, compute] = Cell("pass", "")


def test_the_matrix_file_is_what_the_cells_did() -> None:
    """Runs after the cells (same module, later). In CI the matrix must be the committed
    one; ``CERVER_WRITE_MATRIX=1`` writes it (then commit ``docs/provider-matrix.md`` and copy
    it into the README's table). Elsewhere a machine missing tools skips cells, so the file
    is left alone."""
    cells = len(HARNESSES) * len(COMPUTES)
    if len(RESULTS) < cells:
        pytest.skip(f"only {len(RESULTS)} of {cells} cells ran (run the whole module)")
    failed = {k: v for k, v in RESULTS.items() if v.outcome == "fail"}
    assert not failed, failed
    rendered = render(RESULTS, HARNESSES, COMPUTES)
    if os.environ.get("CERVER_WRITE_MATRIX") == "1":
        MATRIX_FILE.write_text(rendered)
    elif os.environ.get("CI"):
        committed = MATRIX_FILE.read_text() if MATRIX_FILE.exists() else ""
        assert rendered == committed, (
            "the matrix changed: rerun with CERVER_WRITE_MATRIX=1 and commit "
            "docs/provider-matrix.md and the README's table"
        )
