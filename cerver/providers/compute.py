"""The credentials of a compute provider, declared like a model provider's.

Compute plug-ins read their gateway-wide credentials from the environment themselves
(``compute.base.Compute.credentials``); this declaration is what lets an *account* store its
own key for one (``PUT /v2/account/credentials/e2b``) and have provisioning use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ComputeCredentials"]


@dataclass(frozen=True, slots=True)
class ComputeCredentials:
    """How a compute provider is keyed.

    Attributes:
        name: the compute registry's name (``e2b``).
        variables: every variable the provider needs on the gateway (the same tuple as the
            plug-in's ``credentials``).
        base_url_env: the variable overriding its API URL, if any.
        key_argument: the constructor argument that takes one account's key; ``None`` when
            the provider needs several secrets (Modal's token pair, Vercel's token + team +
            project), which per-account credentials do not cover yet.
    """

    name: str
    variables: tuple[str, ...]
    base_url_env: str | None = None
    key_argument: str | None = "api_key"

    kind: Literal["compute"] = "compute"

    @property
    def key_env(self) -> str:
        return self.variables[0]

    @property
    def account_base_url(self) -> bool:
        """Accounts never point a compute provider elsewhere: its API is the gateway's."""
        return False

    @property
    def accepts_account_key(self) -> bool:
        return self.key_argument is not None
