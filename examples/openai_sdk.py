"""Keep your OpenAI client: the official `openai` SDK on a Cerver session.

Only `base_url` and `api_key` change. The first request starts a session (its id comes back in
the `X-Cerver-Session-Id` header); the second continues it on another model; the app's own
function is called, run by the app, and its result sent back. Run a gateway first
(`cerver serve`), then:

    CERVER_API_KEY=ck_… python examples/openai_sdk.py

With no provider key configured the gateway answers from its mock upstream (a test double),
and every answer says so.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import httpx
from openai import OpenAI

URL = os.environ.get("CERVER_URL", "http://127.0.0.1:8787")
KEY = os.environ["CERVER_API_KEY"]
SHELL = {
    "type": "function",
    "function": {
        "name": "shell",
        "description": "Run a command on the app's own machine.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}


def main() -> None:
    # A transcript-only session, so the model's only tool is the app's own `shell`.
    created = httpx.post(
        f"{URL}/v2/sessions",
        json={"user": "user_4f3a", "compute": None},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    ).json()
    sid = created["session_id"]
    client = OpenAI(base_url=f"{URL}/v1", api_key=KEY, default_headers={"X-Cerver-Session-Id": sid})

    messages: list[Any] = [{"role": "user", "content": "run: echo hello from the app"}]
    while True:
        answer = client.chat.completions.create(
            model="claude-sonnet-4-6", messages=messages, tools=[SHELL]
        ).choices[0]
        messages.append(answer.message.model_dump(exclude_none=True))
        if answer.finish_reason != "tool_calls":
            break
        for call in answer.message.tool_calls or []:
            command = json.loads(call.function.arguments)["command"]
            print(f"the model asks the app to run: {command}")
            output = subprocess.run(command, shell=True, capture_output=True, text=True).stdout
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    print("claude-sonnet-4-6:", answer.message.content)

    messages.append({"role": "user", "content": "Now in one line, please."})
    swapped = client.chat.completions.create(model="openai/gpt-5", messages=messages)
    print(f"{swapped.model}:", swapped.choices[0].message.content)

    transcript = httpx.get(
        f"{URL}/v2/sessions/{sid}?transcript=true",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    ).json()["transcript"]
    for entry in transcript:
        usage = entry.get("usage") or {}
        print(
            f"  {entry['seq']:>2} {entry['role']:<9} {entry['kind']:<16} "
            f"{entry.get('harness') or '':<10} {entry.get('model') or '':<18} "
            f"cost={usage.get('cost_usd')}"
        )


if __name__ == "__main__":
    main()
