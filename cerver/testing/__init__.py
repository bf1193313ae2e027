"""Test doubles and suites for Cerver and its plug-in authors. Nothing here is for production.

* :mod:`cerver.testing.mock_upstream`: a local server that speaks the Anthropic, OpenAI
  (Responses and Chat Completions) and Gemini wire formats with scripted replies; every answer
  it writes is labelled ``[mock upstream]``.
* :mod:`cerver.testing.sandbox`: :class:`ShellSandbox`, the host's ``bash`` in a directory,
  for testing a harness's tool loop without a compute backend.
* :mod:`cerver.testing.conformance`: :class:`SandboxConformance`, the pytest suite every
  compute provider passes; a third-party compute subclasses it in its own tests.

Import the submodule you need; this package imports nothing heavy by itself.
"""
