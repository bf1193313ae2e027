"""The ``cerver`` command and its subcommands: serve, demo, compare, setup, relay, sessions.

``main`` is the console-script entry point; each subcommand's body lives in its own module
(``demo``, ``compare``, ``render``, ``setup_tools``, ``relay_agent``) and is imported only when
that subcommand runs, so ``cerver --help`` stays fast.
"""

from cerver.cli.main import app, main

__all__ = ["app", "main"]
