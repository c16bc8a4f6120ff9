"""Structured logs: JSON lines in production, readable lines in a terminal.

Fields are key-values, never formatted into the message:
``log.info("signal applied", incident_id=..., event_id=..., topic=..., partition=..., offset=...)``.
Standard-library loggers (aiokafka, uvicorn, alembic) go through the same renderer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from services.common.bus.base import Record

LogFormat = Literal["json", "console"]


def configure_logging(level: str = "INFO", fmt: LogFormat | None = None) -> None:
    """Configure structlog and the standard library once, at the entrypoint.

    ``fmt`` None picks ``console`` when stderr is a terminal, else ``json``.
    """
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _identity(_logger: Any, _name: str, event: Any) -> Any:
    return event


def get_logger(name: str | None = None, **fields: Any) -> Any:
    """A structlog logger, optionally with bound fields."""
    return structlog.get_logger(name).bind(**fields) if fields else structlog.get_logger(name)


def record_fields(record: Record) -> dict[str, Any]:
    """The fields that locate a consumed record in the logs."""
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
