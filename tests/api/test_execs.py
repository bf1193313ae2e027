"""Commands and files on a session's compute through the API."""

from __future__ import annotations

import httpx
import pytest

from cerver.client import AsyncClient
from cerver.errors import InvalidRequest, NotFound


@pytest.fixture
async def sid(client: AsyncClient) -> str:
    return (await client.create_session(user="u", compute={"provider": "local"}))["session_id"]


async def test_run_returns_output_and_exit_code(client: AsyncClient, sid: str) -> None:
    ok = await client.run(sid, "echo out; echo err >&2")
    assert ok["result"] == {
        "stdout": "out\n",
        "stderr": "err\n",
        "exit_code": 0,
        "timed_out": False,
        "limit": None,
    }
    assert ok["provider"] == "local" and ok["duration_ms"] > 0
    failed = await client.run(sid, "exit 3")
    assert failed["result"]["exit_code"] == 3  # a result, not an error
    slow = await client.run(sid, "sleep 5", timeout=0.3)
    assert slow["result"]["timed_out"] is True and slow["result"]["exit_code"] == 124
    assert slow["result"]["limit"] == "wall_time"
    metrics = await client.metrics(sid)
    assert metrics["total_exec_count"] == 3
    assert metrics["last_exec_latency_ms"] >= 250
    assert metrics["time_to_first_exec_ms"] is not None


async def test_env_is_passed_but_gateway_secrets_are_not(client: AsyncClient, sid: str) -> None:
    result = await client.run(
        sid, 'echo "$GREETING/${OPENAI_API_KEY:-none}"', env={"GREETING": "hi"}
    )
    assert result["result"]["stdout"] == "hi/none\n"


async def test_run_stream_sends_chunks_then_exit(client: AsyncClient, sid: str) -> None:
    events = [e async for e in client.run_stream(sid, "echo one; echo two >&2; exit 4")]
    assert events[-1].event == "exit" and events[-1].data == {"exit_code": 4, "limit": None}
    out = "".join(e.data["data"] for e in events if e.event == "stdout")
    err = "".join(e.data["data"] for e in events if e.event == "stderr")
    assert (out, err) == ("one\n", "two\n")
    assert (await client.metrics(sid))["total_stream_count"] == 1


async def test_files_round_trip(client: AsyncClient, sid: str) -> None:
    await client.write_file(sid, "src/app.py", "print('hi')\n")
    await client.write_file(sid, "blob.bin", b"\x00\xff\x10")
    assert (await client.read_file(sid, "src/app.py"))["content"] == "print('hi')\n"
    blob = await client.read_file(sid, "blob.bin")
    assert blob["encoding"] == "base64" and blob["size"] == 3
    assert await client.list_files(sid) == ["blob.bin", "src/app.py"]
    assert (await client.run(sid, "python3 src/app.py"))["result"]["stdout"] == "hi\n"


async def test_path_escape_and_missing_file(client: AsyncClient, sid: str) -> None:
    with pytest.raises(InvalidRequest):
        await client.write_file(sid, "../outside.txt", "x")
    with pytest.raises(NotFound):
        await client.read_file(sid, "nope.txt")


async def test_bad_base64_is_400(http: httpx.AsyncClient, sid: str) -> None:
    response = await http.put(
        f"/v2/sessions/{sid}/files", json={"path": "a", "content": "%%%", "encoding": "base64"}
    )
    assert response.status_code == 400 and "base64" in response.json()["detail"]
