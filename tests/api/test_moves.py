"""Moving a session with its files: local → relay (a real process) → local; pause/resume."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.compute.relay_process import RelayProcess, relay_process


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    with relay_process(tmp_path_factory.mktemp("relay")) as process:
        yield process


async def run(http: httpx.AsyncClient, session_id: str, code: str) -> dict:
    response = await http.post(f"/v2/sessions/{session_id}/run", json={"code": code})
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def test_local_to_relay_to_local_keeps_files(
    http: httpx.AsyncClient, relay: RelayProcess
) -> None:
    body = {"label": "box", "base_url": relay.base_url, "token": relay.token}
    compute_id = (await http.post("/v2/computes/register", json=body)).json()["compute_id"]
    session = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()
    sid, first_sandbox = session["session_id"], session["sandbox_id"]
    await run(http, sid, "mkdir -p src && echo 'print(42)' > src/app.py && echo v1 > notes.txt")

    moved = await http.post(f"/v2/sessions/{sid}/compute", json={"compute_id": compute_id})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["provider"], moved.json()["compute_id"]) == ("relay", compute_id)
    assert (await run(http, sid, "cat notes.txt && python3 src/app.py"))["stdout"] == "v1\n42\n"
    await run(http, sid, "echo v2 >> notes.txt")

    back = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "local"})
    assert back.json()["provider"] == "local"
    assert back.json()["sandbox_id"] != first_sandbox
    assert (await run(http, sid, "cat notes.txt"))["stdout"] == "v1\nv2\n"

    entries = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    switches = [e for e in entries if e["kind"] == "compute_switched"]
    assert [
        (e["metadata"]["from"]["provider"], e["metadata"]["to"]["provider"]) for e in switches
    ] == [
        ("local", "relay"),
        ("relay", "local"),
    ]
    # The relay's workspace was released once the session left it.
    remote = switches[0]["metadata"]["to"]["sandbox_id"].split("/")[1]
    assert not (relay.root / remote).exists()


async def test_pause_releases_and_resume_restores_elsewhere(
    http: httpx.AsyncClient, relay: RelayProcess
) -> None:
    body = {"label": "box", "base_url": relay.base_url, "token": relay.token}
    await http.post("/v2/computes/register", json=body)
    sid = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()[
        "session_id"
    ]
    await run(http, sid, "echo kept > state.txt")

    paused = await http.post(f"/v2/sessions/{sid}/pause")
    assert paused.json()["status"] == "paused"
    assert paused.json()["sandbox_id"] is None
    refused = await http.post(f"/v2/sessions/{sid}/run", json={"code": "true"})
    assert refused.status_code == 409
    assert "resume" in refused.json()["detail"]
    assert (await http.post(f"/v2/sessions/{sid}/pause")).status_code == 409

    resumed = await http.post(f"/v2/sessions/{sid}/resume", json={"provider": "relay"})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["provider"] == "relay"
    assert resumed.json()["status"] == "ready"
    assert (await run(http, sid, "cat state.txt"))["stdout"] == "kept\n"
    assert (await http.post(f"/v2/sessions/{sid}/resume")).status_code == 409


async def test_move_errors_are_clear(http: httpx.AsyncClient) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]

    nowhere = await http.post(f"/v2/sessions/{sid}/compute", json={})
    assert nowhere.status_code == 400
    assert "Say where to move" in nowhere.json()["detail"]
    transcript_only = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "local"})
    assert transcript_only.status_code == 400
    assert "transcript-only" in transcript_only.json()["detail"]
    unknown = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "e2c"})
    assert unknown.status_code == 400


async def test_failed_move_leaves_the_session_in_place(http: httpx.AsyncClient) -> None:
    session = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()
    sid = session["session_id"]
    await run(http, sid, "echo safe > f.txt")

    # No relay is registered for this account: routing to it is a 409, nothing moves.
    response = await http.post(
        f"/v2/sessions/{sid}/compute",
        json={"policy": {"mode": "pinned", "pinned_provider": "relay"}},
    )
    assert response.status_code == 409
    current = (await http.get(f"/v2/sessions/{sid}")).json()
    assert current["sandbox_id"] == session["sandbox_id"]
    assert (await run(http, sid, "cat f.txt"))["stdout"] == "safe\n"


async def test_e2b_session_moves_to_local_with_its_files(
    http: httpx.AsyncClient, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real e2b SDK against the local fake E2B (a test double), configured by env vars
    the way an operator would."""
    pytest.importorskip("e2b")
    from tests.compute.fake_e2b import fake_e2b

    with fake_e2b(tmp_path) as fake:
        monkeypatch.setenv("E2B_API_KEY", "e2b_test_key")
        monkeypatch.setenv("E2B_API_URL", fake.url)
        monkeypatch.setenv("E2B_SANDBOX_URL", fake.url)
        catalog = {p["name"]: p for p in (await http.get("/v2/providers")).json()["providers"]}
        assert catalog["e2b"]["status"] == "live"

        body = {"policy": {"mode": "pinned", "pinned_provider": "e2b"}}
        session = (await http.post("/v2/sessions", json=body)).json()
        assert session["provider"] == "e2b"
        sid = session["session_id"]
        await run(http, sid, "echo from-e2b > moved.txt")

        back = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "local"})
        assert back.status_code == 200, back.text
        assert (await run(http, sid, "cat moved.txt"))["stdout"] == "from-e2b\n"
        assert session["sandbox_id"] not in fake.sandboxes  # the E2B sandbox was killed


async def test_session_moves_from_local_to_daytona_and_back_with_its_files(
    http: httpx.AsyncClient, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real daytona SDK against the local fake Daytona (a test double), configured by env
    vars the way an operator would."""
    pytest.importorskip("daytona", reason="pip install 'cerver[daytona]'")
    from tests.compute.fake_daytona import API_KEY, fake_daytona

    with fake_daytona(tmp_path) as fake:
        monkeypatch.setenv("DAYTONA_API_KEY", API_KEY)
        monkeypatch.setenv("DAYTONA_API_URL", fake.url)
        session = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()
        sid = session["session_id"]
        await run(http, sid, "mkdir -p src && echo local > src/notes.txt")

        there = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "daytona"})
        assert there.status_code == 200, there.text
        assert there.json()["provider"] == "daytona"
        daytona_id = there.json()["sandbox_id"]
        assert daytona_id in fake.sandboxes
        assert (await run(http, sid, "cat src/notes.txt && pwd"))["stdout"] == (
            "local\n/home/daytona/workspace\n"
        )
        await run(http, sid, "echo daytona >> src/notes.txt")

        back = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "local"})
        assert back.status_code == 200, back.text
        assert (await run(http, sid, "cat src/notes.txt"))["stdout"] == "local\ndaytona\n"
        assert daytona_id not in fake.sandboxes  # the Daytona sandbox was deleted


async def test_session_moves_from_local_to_vercel_and_back_with_its_files(
    http: httpx.AsyncClient, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real vercel SDK against the local fake Vercel Sandbox API (a test double),
    configured by env vars the way an operator would."""
    pytest.importorskip("vercel.sandbox", reason="pip install 'cerver[vercel]'")
    from tests.compute.fake_vercel import CREDENTIALS, fake_vercel

    with fake_vercel(tmp_path) as fake:
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CERVER_VERCEL_API_URL", fake.url)
        session = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()
        sid = session["session_id"]
        await run(http, sid, "mkdir -p src && echo local > src/notes.txt")

        there = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "vercel"})
        assert there.status_code == 200, there.text
        assert there.json()["provider"] == "vercel"
        vercel_id = there.json()["sandbox_id"]
        assert vercel_id in fake.sandboxes
        assert (await run(http, sid, "cat src/notes.txt && pwd"))["stdout"] == (
            "local\n/vercel/sandbox/workspace\n"
        )
        await run(http, sid, "echo vercel >> src/notes.txt")

        back = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "local"})
        assert back.status_code == 200, back.text
        assert (await run(http, sid, "cat src/notes.txt"))["stdout"] == "local\nvercel\n"
        assert vercel_id not in fake.sandboxes  # the Vercel sandbox was destroyed


async def test_session_moves_from_local_to_modal_and_back_with_its_files(
    http: httpx.AsyncClient, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real modal SDK against the local fake Modal (a gRPC test double), configured by env
    vars the way an operator would."""
    pytest.importorskip("modal", reason="pip install 'cerver[modal]'")
    from tests.compute.fake_modal import TOKEN_ID, TOKEN_SECRET, fake_modal

    with fake_modal(tmp_path) as fake:
        monkeypatch.setenv("MODAL_SERVER_URL", fake.url)
        monkeypatch.setenv("MODAL_TOKEN_ID", TOKEN_ID)
        monkeypatch.setenv("MODAL_TOKEN_SECRET", TOKEN_SECRET)
        session = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()
        sid = session["session_id"]
        await run(http, sid, "mkdir -p src && echo local > src/notes.txt")

        there = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "modal"})
        assert there.status_code == 200, there.text
        assert there.json()["provider"] == "modal"
        modal_id = there.json()["sandbox_id"]
        assert modal_id in fake.sandboxes
        assert (await run(http, sid, "cat src/notes.txt && pwd"))["stdout"] == (
            "local\n/workspace\n"
        )
        await run(http, sid, "echo modal >> src/notes.txt")

        back = await http.post(f"/v2/sessions/{sid}/compute", json={"provider": "local"})
        assert back.status_code == 200, back.text
        assert (await run(http, sid, "cat src/notes.txt"))["stdout"] == "local\nmodal\n"
        assert modal_id not in fake.sandboxes  # the Modal sandbox was terminated
