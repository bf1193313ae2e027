"""Compute: where a session's tools and commands run (local sandbox, relay, E2B…).

One module per provider; :mod:`compute.base` holds the contract.
"""

from compute.base import Capabilities, Compute, ExecChunk, Profile, Sandbox, SandboxSpec

__all__ = ["Capabilities", "Compute", "ExecChunk", "Profile", "Sandbox", "SandboxSpec"]
