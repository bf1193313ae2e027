"""The model proxy: provider keys never enter a sandbox (DESIGN §3).

A CLI harness running in a session's compute reaches its model at ``/v2/proxy/{provider}/…``
(any model provider of :mod:`cerver.providers`: ``anthropic``, ``openai``, ``gemini``…) with a
short-lived token scoped to its run; the gateway forwards with the real key (the run's
account's own, else the gateway's), streams the answer back, and meters every request into
the run's ledger.
"""

from cerver.proxy.forward import ProxyForwarder
from cerver.proxy.grants import ProxyGrant, ProxyGrants
from cerver.proxy.metering import UsageMeter
from cerver.proxy.service import ModelProxy, runtime_dir

__all__ = [
    "ModelProxy",
    "ProxyForwarder",
    "ProxyGrant",
    "ProxyGrants",
    "UsageMeter",
    "runtime_dir",
]
