"""Quickstart: one end user's session, a tool-using turn, a model swap, the transcript.

Run a gateway first (`cerver serve`), then:

    CERVER_API_KEY=ck_… python examples/quickstart.py

With no provider key configured the gateway answers from its mock upstream (a test double),
and every answer says so.
"""

from __future__ import annotations

from cerver import Client


def main() -> None:
    with Client() as cerver:  # CERVER_URL (default http://127.0.0.1:8787), CERVER_API_KEY
        session = cerver.create_session(
            user="user_4f3a", session_name="quickstart", harness="anthropic"
        )
        sid = session["session_id"]
        print(f"session {sid} on {session['provider']} ({session['sandbox_id']})")

        shell = cerver.run(sid, "python3 -c 'print(6 * 7)'")
        print("sandbox says:", shell["result"]["stdout"].strip())

        first = cerver.run_llm(sid, "Count the files here: `ls | wc -l`")
        print(f"{first['harness']} · {first['model']}: {first['message']['content']}")

        second = cerver.run_llm(sid, "Summarise what happened so far.", harness="openai")
        print(f"{second['harness']} · {second['model']}: {second['message']['content']}")

        for entry in cerver.get_session(sid, transcript=True)["transcript"]:
            print(
                f"{entry['seq']:>3} {entry['role']:<9} {entry['kind']:<16} {entry['harness'] or ''}"
            )


if __name__ == "__main__":
    main()
