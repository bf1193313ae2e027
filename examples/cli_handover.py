"""One session, four writers: Claude Code, Codex, Gemini CLI, then the Anthropic SDK harness.

The three CLIs run inside the session's sandbox (the local compute: the workspace, under
bubblewrap) and reach their models only through the gateway's model proxy, with a token that
lives as long as their run. Each later writer sees the whole conversation so far, including
the earlier CLI's tool calls and their results. Run a gateway first (`cerver serve`), then:

    CERVER_API_KEY=ck_… python examples/cli_handover.py

It needs the CLIs on the gateway's machine: `pip install 'cerver[claude-code]'` and
`cerver setup` (Codex and Gemini CLI). With no provider key configured the gateway answers
from its mock upstream (a test double), and every answer says so.
"""

from __future__ import annotations

from cerver import Client


def main() -> None:
    with Client(timeout=300) as cerver:  # CERVER_URL, CERVER_API_KEY
        sid = cerver.create_session(user="user_4f3a", harness="claude-code")["session_id"]
        print(f"session {sid}")

        turns = [
            ("claude-code", "Create a note: `echo 'written by Claude Code' > note.txt`"),
            ("codex", "Show the note: `cat note.txt`"),
            ("gemini-cli", "Append to it: `echo 'and by Gemini CLI' >> note.txt`"),
            ("anthropic", "Summarise what the earlier turns did."),
        ]
        for harness, prompt in turns:
            result = cerver.run_llm(sid, prompt, harness=harness)
            answer = " ".join(result["message"]["content"].split())[:160]
            print(f"{result['harness']} · {result['model']}: {answer}")

        print("\ntranscript (one id, one history, four writers):")
        for entry in cerver.get_session(sid, transcript=True)["transcript"]:
            text = " ".join(entry["content"].split())[:70]
            print(
                f"{entry['seq']:>3} {entry['role']:<9} {entry['kind']:<16} "
                f"{entry['harness'] or '':<12} {text}"
            )

        usage = cerver.metrics(sid)["by_harness"]
        for row in usage:
            print(
                f"{row['harness']:<12} {row['model']:<20} calls={row['calls']} "
                f"tokens={row['input_tokens']}+{row['output_tokens']}"
            )


if __name__ == "__main__":
    main()
