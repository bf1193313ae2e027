"""`cerver relay --gateway …` registers itself with a real `cerver serve` and heartbeats; a
session runs on it; killing the relay mid-command fails the command fast and cleanly."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import bootstrap_key, free_port


def test_relay_registers_heartbeats_and_dies_cleanly(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, data_dir = server
    api_key = bootstrap_key(data_dir)
    port, token = free_port(), secrets.token_hex(16)
    argv = [sys.executable, "-m", "cerver", "relay", "--port", str(port), "--token", token]
    argv += ["--root", str(tmp_path / "relay"), "--gateway", url, "--api-key", api_key]
    argv += ["--label", "e2e-box", "--heartbeat-every", "0.5"]
    relay = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            deadline = time.monotonic() + 20
            computes: list[dict] = []
            while time.monotonic() < deadline and not computes:
                computes = http.get("/v2/computes").json()["computes"]
                time.sleep(0.2)
            assert computes, "the relay never registered"
            compute = computes[0]
            assert (compute["label"], compute["status"]) == ("e2e-box", "online")
            time.sleep(1.2)
            again = http.get(f"/v2/computes/{compute['compute_id']}").json()
            assert again["last_heartbeat_at"] > compute["last_heartbeat_at"]

            session = http.post(
                "/v2/sessions", json={"compute": {"compute_id": compute["compute_id"]}}
            ).json()
            sid = session["session_id"]
            ran = http.post(f"/v2/sessions/{sid}/run", json={"code": "echo via relay"}).json()
            assert ran["result"]["stdout"] == "via relay\n"

            def kill_soon() -> None:
                time.sleep(1.0)
                os.killpg(relay.pid, signal.SIGKILL)

            threading.Thread(target=kill_soon).start()
            started = time.monotonic()
            broken = http.post(f"/v2/sessions/{sid}/run", json={"code": "sleep 30"})
            assert broken.status_code == 502
            assert broken.json()["code"] == "compute_error"
            assert time.monotonic() - started < 6
            # The gateway is fine; the session is still readable.
            assert http.get(f"/v2/sessions/{sid}").status_code == 200
    finally:
        if relay.poll() is None:
            os.killpg(relay.pid, signal.SIGKILL)
        relay.wait(timeout=10)
