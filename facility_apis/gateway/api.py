"""The gateway's HTTP API (tornado), in SkyPortal's JSON envelope.

Routes (all need ``Authorization: token <t>`` or ``Bearer <t>``, except the facility callback)::

    PUT    /api/allocations/<id>            store an allocation (altdata validated, encrypted)
    GET    /api/allocations/<id>            the allocation, without its credentials
    POST   /api/allocations/validate        check an allocation body; nothing stored
    POST   /api/followup_request            accept a request (direct or SkyPortal GENERIC body)
    GET    /api/followup_request            the caller's requests
    GET    /api/followup_request/<id>       one request: history, transactions, deliveries
    PUT    /api/followup_request/<id>       change its payload (an update at the facility)
    DELETE /api/followup_request/<id>       cancel it
    POST   /api/callbacks/<id>/<signature>  a facility's nudge (signed URL, no token)
    GET    /api/health                      queue and outbox metrics
    GET    /                                a small HTML table of the caller's requests

Store and SkyPortal calls run on ``executor``, never on the IOLoop.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

import tornado.web
from tornado.escape import xhtml_escape

from ..core.egress import EgressPolicy
from ..core.registry import Registry, default_registry
from ..skyportal.client import SkyPortalClient
from .api_allocations import AllocationHandler, AllocationValidateHandler
from .api_base import MAX_BODY_BYTES, ApiError, BaseHandler, Gateway, NotFoundHandler, log_request
from .api_requests import CallbackHandler, FollowupRequestHandler, FollowupRequestsHandler, callback_path
from .crypto import SecretBox
from .store import Store

__all__ = ["MAX_BODY_BYTES", "ApiError", "callback_path", "make_app"]


class HealthHandler(BaseHandler):
    """``GET``: queue depth by facility and state, due jobs, the outbox backlog."""

    async def get(self) -> None:
        self.success(await self.blocking(self.gateway.store.metrics))


class IndexHandler(BaseHandler):
    """``GET /``: the caller's requests as an HTML table (token header required, as everywhere)."""

    COLUMNS = ("id", "facility", "obj_id", "state", "status")

    async def get(self) -> None:
        rows = await self.blocking(self.gateway.store.requests.newest, self.client_id)
        head = "".join(f"<th>{name}</th>" for name in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{xhtml_escape(str(row[name]))}</td>" for name in self.COLUMNS) + "</tr>" for row in rows)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            "<!doctype html><html><head><meta charset='utf-8'><title>facility_apis gateway</title></head><body>"
            f"<h1>Follow-up requests</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>"
        )


def make_app(
    store: Store,
    *,
    registry: Registry | None = None,
    skyportal: SkyPortalClient | None = None,
    executor: Executor | None = None,
    facility_config: Mapping[str, Mapping[str, Any]] | None = None,
    box: SecretBox | None = None,
    egress: EgressPolicy | None = None,
) -> tornado.web.Application:
    """The API over ``store``.

    ``registry`` names the facilities (default: the process-wide one); ``skyportal`` resolves the
    coordinates of SkyPortal GENERIC bodies; ``executor`` runs blocking calls (default: the
    loop's); ``facility_config`` maps facility names to their constructor config; ``box`` signs
    callback URLs (default: the store's); ``egress`` is where facilities may call besides the
    public internet (it decides which URLs in altdata are accepted). Serve it with ``max_body_size=MAX_BODY_BYTES``.
    """
    gateway = Gateway(
        store=store,
        registry=registry if registry is not None else default_registry(),
        box=box if box is not None else store.box,
        skyportal=skyportal,
        executor=executor,
        facility_config=dict(facility_config or {}),
        egress=egress if egress is not None else EgressPolicy(),
    )
    routes = [
        (r"/", IndexHandler),
        (r"/api/allocations/validate", AllocationValidateHandler),
        (r"/api/allocations/([^/]+)", AllocationHandler),
        (r"/api/followup_request", FollowupRequestsHandler),
        (r"/api/followup_request/([^/]+)", FollowupRequestHandler),
        (r"/api/callbacks/([^/]+)/([^/]+)", CallbackHandler),
        (r"/api/health", HealthHandler),
    ]
    return tornado.web.Application(routes, gateway=gateway, default_handler_class=NotFoundHandler, log_function=log_request)
