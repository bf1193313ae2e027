"""What a session may ask of its sandbox: the gateway decides, never the tenant.

``requirements.limits`` may change the gateway's default limits within its maxima
(``CERVER_SANDBOX_LIMITS``, ``CERVER_SANDBOX_LIMITS_MAX``), and ``requirements.network``
is only honoured when the gateway allows egress (``CERVER_SANDBOX_EGRESS``). A request that
asks for more is a 400 naming the setting, before anything is provisioned or stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from cerver.errors import InvalidRequest, NotConfigured
from cerver.types import SandboxLimits

__all__ = ["SandboxPolicy"]


class SandboxPolicy:
    """The gateway's limits (defaults and maxima) and egress allow-list for sandboxes.

    Raises:
        NotConfigured: (on construction) a default limit exceeds its maximum.
    """

    def __init__(
        self,
        defaults: SandboxLimits | None = None,
        maxima: SandboxLimits | None = None,
        egress: Sequence[str] = (),
    ) -> None:
        self.defaults = defaults or SandboxLimits()
        self.maxima = maxima or self.defaults
        self.egress = tuple(egress)
        over = self._over(self.defaults)
        if over:
            raise NotConfigured(
                f"CERVER_SANDBOX_LIMITS exceeds CERVER_SANDBOX_LIMITS_MAX for {', '.join(over)}: "
                "raise the maxima or lower the defaults.",
                context={"fields": over},
            )

    def _over(self, limits: SandboxLimits) -> list[str]:
        return [
            name
            for name, value in limits.model_dump().items()
            if value > getattr(self.maxima, name)
        ]

    def network(self, requirements: Mapping[str, Any]) -> bool:
        """Whether the sandbox gets egress.

        Raises:
            InvalidRequest: network was asked for and the gateway allows no egress.
        """
        if not requirements.get("network"):
            return False
        if not self.egress:
            raise InvalidRequest(
                "requirements.network is not available on this gateway: sandboxes have no "
                "network unless the gateway operator allows egress with CERVER_SANDBOX_EGRESS "
                "(an allow-list of hosts). Remove requirements.network, or ask the operator.",
                context={"field": "requirements.network", "setting": "CERVER_SANDBOX_EGRESS"},
            )
        return True

    def limits(self, requirements: Mapping[str, Any]) -> SandboxLimits:
        """The gateway's defaults with ``requirements.limits`` applied.

        Raises:
            InvalidRequest: an unknown or invalid field, or a value over the gateway's maximum
                (the message names CERVER_SANDBOX_LIMITS_MAX and the maximum).
        """
        asked = requirements.get("limits") or {}
        try:
            limits = SandboxLimits.model_validate({**self.defaults.model_dump(), **asked})
        except ValidationError as exc:
            raise InvalidRequest(
                f"Invalid requirements.limits: {exc.errors()[0]['msg']} "
                f"({'.'.join(map(str, exc.errors()[0]['loc']))}).",
                context={"field": "requirements.limits"},
            ) from exc
        over = self._over(limits)
        if over:
            maxima = {name: getattr(self.maxima, name) for name in over}
            raise InvalidRequest(
                "requirements.limits asks for more than this gateway allows: "
                + ", ".join(f"{name} at most {value}" for name, value in maxima.items())
                + " (CERVER_SANDBOX_LIMITS_MAX).",
                context={"field": "requirements.limits", "maxima": maxima},
            )
        return limits
