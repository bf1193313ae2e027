"""Placement: the compute catalog and the router that picks a compute for a session."""

from cerver.placement.catalog import MODELLED, Catalog, ProviderEntry, ProviderStatus
from cerver.placement.router import NoProviderQualifies, RoutingReport, route, score, unmet

__all__ = [
    "MODELLED",
    "Catalog",
    "NoProviderQualifies",
    "ProviderEntry",
    "ProviderStatus",
    "RoutingReport",
    "route",
    "score",
    "unmet",
]
