"""One session walks the provider table: Claude Code on local → moved with its files to E2B →
Codex on E2B → moved to a relay → the Anthropic SDK harness.

Every CLI runs inside the session's current sandbox and reaches its model only through the
gateway's model proxy (no provider key ever enters a sandbox): on local through the
gateway's socket, on E2B at the gateway's public URL, on the relay through the relay's
uplink to that URL. The workspace moves with the session, so each writer finds the file the
previous one wrote. Run a gateway that can reach all three:

    E2B_API_KEY=… CERVER_PUBLIC_URL=https://<where E2B and the relay reach the gateway> cerver serve
    cerver relay --port 8790 --token T                 # on the relay machine, then register it:
    curl -X POST $CERVER_URL/v2/computes/register -H "Authorization: Bearer $CERVER_API_KEY" \\
         -d '{"label": "lab", "base_url": "http://relay:8790", "token": "T"}'
    CERVER_API_KEY=ck_… python examples/walk_the_table.py [<relay compute id>]

The E2B template must carry the CLIs at /opt/cerver-tools (Cerver's tools layout), or Cerver
uploads its own copy on first use. Without a relay compute id the newest online relay of the
account is used. With no provider key configured the gateway answers from its mock upstream
(a test double), and every answer says so.
"""

from __future__ import annotations

import sys
from typing import Any

from cerver import Client


def relay_compute(cerver: Any) -> str:
    """The relay to move to: the argument, else the account's newest online relay."""
    if len(sys.argv) > 1:
        return sys.argv[1]
    online = [c for c in cerver.list_computes() if c.get("status") == "online"]
    if not online:
        raise SystemExit("No online relay compute: register one (see this file's docstring).")
    return str(online[-1]["compute_id"])


def main() -> None:
    with Client(timeout=600) as cerver:  # CERVER_URL, CERVER_API_KEY
        relay = relay_compute(cerver)
        session = cerver.create_session(
            user="user_walk", harness="claude-code", compute={"provider": "local"}
        )
        sid = session["session_id"]
        print(f"session {sid} on {session['provider']}")

        steps: list[tuple[str, dict[str, Any] | None, str]] = [
            ("claude-code", None, "run: echo 'local, by Claude Code' > walk.txt && cat walk.txt"),
            ("codex", {"provider": "e2b"}, "run: echo 'e2b, by Codex' >> walk.txt && cat walk.txt"),
            ("anthropic", {"compute_id": relay}, "run: cat walk.txt"),
        ]
        for harness, move, prompt in steps:
            if move is not None:
                moved = cerver.move_compute(sid, **move)
                print(f"moved to {moved['provider']} ({moved['sandbox_id']}) with its files")
            result = cerver.run_llm(sid, prompt, harness=harness)
            if result["status"] != "completed":
                raise SystemExit(f"{harness} failed: {result['error']}")
            answer = " ".join(result["message"]["content"].split())[:120]
            print(f"{result['harness']} · {result['model']}: {answer}")

        print("\ntranscript (one session, three computes, three writers):")
        compute = session["provider"]
        for entry in cerver.get_session(sid, transcript=True)["transcript"]:
            if entry["kind"] == "compute_switched":
                compute = entry["provider"]
            text = " ".join(entry["content"].split())[:60]
            print(
                f"{entry['seq']:>3} {compute:<6} {entry['role']:<9} {entry['kind']:<16} "
                f"{entry['harness'] or '':<12} {text}"
            )
        final = cerver.read_file(sid, "walk.txt")["content"]
        print(f"\nwalk.txt on {cerver.get_session(sid)['provider']}:\n{final}", end="")


if __name__ == "__main__":
    main()
