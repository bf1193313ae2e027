"""No request waits on FastAPI's thread pool: every route and dependency is a coroutine.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool, a thread hand-off per
request: ``get_gateway`` as a ``def`` cost 12 % of a turn's CPU (bench.throughput).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from cerver.api import create_app
from cerver.gateway import Gateway


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)  # FastAPI >= 0.160 wraps included routers


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _is_coroutine(call: Callable[..., Any]) -> bool:
    if inspect.isfunction(call) or inspect.ismethod(call):
        return inspect.iscoroutinefunction(call)
    return inspect.iscoroutinefunction(type(call).__call__)  # an instance, as HTTPBearer()


async def test_every_route_and_dependency_is_a_coroutine(gateway: Gateway) -> None:
    app = create_app(gateway)
    routes = list(_api_routes(app.routes))
    assert len(routes) > 50
    synchronous = {
        f"{route.path}: {getattr(call, '__qualname__', type(call).__qualname__)}"
        for route in routes
        for call in (route.endpoint, *_calls(route.dependant))
        if not _is_coroutine(call)
    }
    assert not synchronous, "runs in FastAPI's thread pool: make it `async def`"
