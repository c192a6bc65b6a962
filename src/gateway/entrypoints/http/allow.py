"""OPTIONS answers whose `Allow` header names every method of the path.

Litestar 2 builds a path's OPTIONS handler from the methods known when the path's first
handler is registered, so `OPTIONS /payments` answered `Allow: GET, OPTIONS` without POST
(litestar-org/litestar#4169, fixed in Litestar 3). This layer writes the route's own list.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send


class AllowEveryMethod:
    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self._litestar = litestar
        self._allow: dict[str, str] | None = None

    def _allow_by_path(self) -> dict[str, str]:
        """Built on first use: every route is registered by then."""
        if self._allow is None:
            self._allow = {
                route.path_format: ", ".join(sorted(route.methods))
                for route in self._litestar.routes
                if isinstance(route, HTTPRoute)
            }
        return self._allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "OPTIONS":
            await self.app(scope, receive, self._with_allow(scope, send))
        else:
            await self.app(scope, receive, send)

    def _with_allow(self, scope: Scope, send: Send) -> Send:
        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 204:
                allow = self._allow_by_path().get(scope.get("path_template") or "")
                if allow is not None:
                    MutableScopeHeaders.from_message(message)["Allow"] = allow
            await send(message)

        return send_allow
