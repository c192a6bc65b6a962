"""`gateway api --workers N`: each uvicorn worker process builds its own app from the env."""

from __future__ import annotations

from litestar import Litestar

from gateway import bootstrap
from gateway.config import Settings
from gateway.entrypoints.http.app import create_app
from gateway.entrypoints.logging import configure_logging


def app_from_env() -> Litestar:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(bootstrap.build(settings, "api"))
