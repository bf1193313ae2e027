"""OpenAI- and Anthropic-compatible surfaces (``/v1``): translation layers onto sessions.

An app keeps its ``openai`` or ``anthropic`` client and changes only ``base_url`` and
``api_key``; each request becomes one turn of a Cerver session
(:mod:`cerver.api.compat.turns`), with its history matched against the transcript
(:mod:`cerver.api.compat.history`) and its ``model`` read by one grammar
(:mod:`cerver.api.compat.model_names`).
"""
