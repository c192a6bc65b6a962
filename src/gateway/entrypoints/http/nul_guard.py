"""No NUL character reaches a query: PostgreSQL refuses it in text outright (a 500).

Run before any route handler (and before authentication): a NUL in the path names nothing
that can exist (`404`); one in a query parameter makes it invalid (`400`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException

from gateway.domain.errors import FieldError
from gateway.entrypoints.http.problems import validation_failed

NUL = "\x00"


async def refuse_nul(request: Request[Any, Any, Any]) -> None:
    if NUL in request.scope["path"]:
        raise NotFoundException
    query = request.scope["query_string"]
    if b"%00" not in query and b"\x00" not in query:  # most requests: nothing to parse
        return
    invalid = sorted(
        {
            name.replace(NUL, "\\0")
            for name, value in request.query_params.multi_items()
            if NUL in name or NUL in value
        }
    )
    if invalid:
        raise validation_failed(
            [FieldError(name, "validation_error", "must not contain NUL") for name in invalid]
        )
