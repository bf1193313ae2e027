"""The seed's ``/gateway/…`` surface, served by the same handlers as ``/v2``.

``GET /gateway/providers``, ``POST /gateway/stress-tests``, ``POST /gateway/sessions``,
``GET /gateway/sessions/{id}``, ``POST /gateway/sessions/{id}/run`` and ``/run/stream``, and
``GET /gateway/sessions/{id}/metrics``. Same bodies, same answers, same auth.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import StreamingResponse

from cerver.api.contract import PLACEMENT, SANDBOX, SSE, errors
from cerver.api.routes import execs, providers, sessions, stress_tests
from cerver.errors import NotFound

router = APIRouter(prefix="/gateway", tags=["compatibility"])

_SANDBOX = errors(*SANDBOX)
router.add_api_route("/providers", providers.list_providers, methods=["GET"])
router.add_api_route(
    "/stress-tests", stress_tests.create_stress_test, methods=["POST"], responses=errors(*PLACEMENT)
)
router.add_api_route(
    "/sessions",
    sessions.create_session,
    methods=["POST"],
    status_code=201,
    responses=errors(NotFound, *PLACEMENT),
)
router.add_api_route("/sessions/{session_id}", sessions.get_session, methods=["GET"])
router.add_api_route(
    "/sessions/{session_id}/run", execs.run_code, methods=["POST"], responses=_SANDBOX
)
router.add_api_route(
    "/sessions/{session_id}/run/stream",
    execs.run_code_stream,
    methods=["POST"],
    response_class=StreamingResponse,
    responses={**SSE, **_SANDBOX},
)
router.add_api_route("/sessions/{session_id}/metrics", sessions.get_metrics, methods=["GET"])
