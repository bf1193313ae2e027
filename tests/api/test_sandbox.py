"""The lower-level /sandbox API: create, get, list, run, stream, files, install, delete."""

from __future__ import annotations

import httpx


async def test_sandbox_lifecycle(http: httpx.AsyncClient) -> None:
    created = await http.post("/sandbox", json={"provider": "local"})
    assert created.status_code == 201, created.text
    box = created.json()
    assert box["provider"] == "local" and box["sandbox_id"].startswith("sbx_")
    sid = box["id"]

    assert (await http.get(f"/sandbox/{sid}")).json()["sandbox_id"] == box["sandbox_id"]
    assert sid in [s["id"] for s in (await http.get("/sandbox")).json()["sandboxes"]]
    write = await http.put(f"/sandbox/{sid}/files", json={"path": "a/b.txt", "content": "hi"})
    assert write.status_code == 200
    assert (await http.get(f"/sandbox/{sid}/files", params={"path": "a/b.txt"})).json()[
        "content"
    ] == "hi"
    assert (await http.get(f"/sandbox/{sid}/files", params={"list": True})).json()["files"] == [
        "a/b.txt"
    ]
    run = await http.post(f"/sandbox/{sid}/run", json={"code": "cat a/b.txt; exit 3"})
    assert run.json()["result"] == {
        "stdout": "hi",
        "stderr": "",
        "exit_code": 3,
        "timed_out": False,
        "limit": None,
    }
    stream = await http.post(f"/sandbox/{sid}/run/stream", json={"code": "echo x"})
    assert "event: stdout" in stream.text

    bad = await http.post(f"/sandbox/{sid}/install", json={"packages": ["x"], "manager": "apt"})
    assert bad.status_code == 400
    assert "'pip' or 'npm'" in bad.json()["detail"]

    assert (await http.delete(f"/sandbox/{sid}")).status_code == 204
    assert (await http.get(f"/sandbox/{sid}")).status_code == 404


async def test_sandbox_routed_and_refused(http: httpx.AsyncClient) -> None:
    routed = await http.post("/sandbox", json={"policy": {"mode": "cheapest"}})
    assert routed.status_code == 201
    assert routed.json()["routing"]["primary_reason"].startswith("Lowest predicted cost")

    refused = await http.post("/sandbox", json={"requirements": {"browser": True}})
    assert refused.status_code == 409
    unknown = await http.post("/sandbox", json={"provider": "e2c"})
    assert unknown.status_code == 400
    extra = await http.post("/sandbox", json={"provder": "local"})
    assert extra.status_code == 422
