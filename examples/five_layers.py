"""Five intelligence layers in one call: a fan-out over five model/harness variants.

Every variant answers the same prompt in its own child session, in parallel; a judge scores
them; the winner becomes the parent session's next turn, with the cost of every variant on
record. Run a gateway first (`cerver serve`), then:

    CERVER_API_KEY=ck_… python examples/five_layers.py

With no provider key configured the gateway answers from its mock upstream (a test double),
and every answer says so.
"""

from __future__ import annotations

from cerver import Client

VARIANTS = [
    {"harness": "anthropic", "model": "claude-sonnet-4-6"},
    {"harness": "anthropic", "model": "claude-haiku-4-5"},
    {"harness": "anthropic", "model": "claude-opus-4-1"},
    {"harness": "openai", "model": "gpt-5"},
    {"harness": "openai", "model": "gpt-5-mini"},
]
# Agreement with the others, and then the fewest tokens (cost is unknown on the mock).
JUDGE = {"type": "composite", "weights": {"consensus": 0.7, "cheapest": 0.3}}


def main() -> None:
    with Client() as cerver:  # CERVER_URL (default http://127.0.0.1:8787), CERVER_API_KEY
        fanout = None
        for event in cerver.stream_fanout(
            "In one sentence: why keep agent sessions outside the app?",
            VARIANTS,
            user="user_4f3a",
            judge=JUDGE,
        ):
            if event.event == "variant.completed":
                v = event.data
                print(
                    f"  done  {v['harness']}:{v['model']:<18} {v['status']:<9} "
                    f"{v['latency_ms']:>7.1f} ms"
                )
            elif event.event == "fanout.completed":
                fanout = event.data
        assert fanout is not None, "the stream ended without fanout.completed"

        verdict = fanout["verdict"]
        print(f"\nfan-out {fanout['fanout_id']} on session {fanout['parent_session_id']}")
        print(f"judge: {verdict['judge']} → {verdict['status']}")
        scores = {s["variant_id"]: s["score"] for s in verdict["scores"]}
        for variant in fanout["variants"]:
            mark = "★" if variant["variant_id"] == fanout["winner_variant_id"] else " "
            score = scores.get(variant["variant_id"])
            shown = "excluded" if score is None else f"score {score:.3f}"
            print(f" {mark} {variant['model']:<18} {shown}  {(variant['output'] or '')[:56]}")

        print("\ncost trail")
        for row, variant in zip(fanout["cost"]["variants"], fanout["variants"], strict=True):
            print(
                f"  {variant['model']:<18} {row['input_tokens']:>5} in "
                f"{row['output_tokens']:>5} out {row['latency_ms']:>8.1f} ms cost {row['cost_usd']}"
            )
        total = fanout["cost"]["total"]
        print(
            f"  total: {total['input_tokens']} in, {total['output_tokens']} out, "
            f"cost {total['cost_usd']}, wall {fanout['cost']['wall_ms']:.1f} ms"
        )

        kept = cerver.get_session(fanout["parent_session_id"], tail=1)["transcript"][-1]
        provenance = kept["metadata"].get("provenance", {})
        print(
            f"\nkept as seq {kept['seq']}: {provenance.get('model')} via {provenance.get('judge')}"
        )


if __name__ == "__main__":
    main()
