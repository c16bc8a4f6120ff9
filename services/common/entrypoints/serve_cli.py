"""``outagedesk serve ingest|incidents|notify``: run one service in this process.

Each subcommand imports its service lazily, so ``outagedesk --help`` stays fast. Other
services add their subcommand to :data:`serve_app` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

serve_app = typer.Typer(
    help="Run one service (production wiring: Kafka, PostgreSQL).", no_args_is_help=True
)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="Default: OUTAGEDESK_DATABASE_URL")
]
BootstrapServers = Annotated[
    str | None,
    typer.Option("--bootstrap-servers", help="Default: OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS"),
]


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service on uvloop: less loop CPU per Kafka fetch, database round trip and HTTP
    request than asyncio's default loop (the API bench's server and client already use it)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")


def _overrides(database_url: str | None, bootstrap_servers: str | None,
               **more: object) -> dict[str, object]:
    """Settings given on the command line; the rest come from the environment."""
    given = {"database_url": database_url, "kafka_bootstrap_servers": bootstrap_servers, **more}
    return {name: value for name, value in given.items() if value is not None}


@serve_app.command("ingest")
def serve_ingest_command(
    database_url: DatabaseUrl = None,
    bootstrap_servers: BootstrapServers = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="/healthz, /readyz, /metrics port (OUTAGEDESK_INGEST_METRICS_PORT, "
            "default 9101; 0 = off)"
        ),
    ] = None,
) -> None:
    """Raw meter, device and customer topics → grid.signals.v1 (+ dead letters)."""
    from services.ingest.entrypoints.run import serve_ingest
    from services.ingest.settings import IngestSettings

    overrides = _overrides(database_url, bootstrap_servers, ingest_metrics_port=metrics_port)
    _run(serve_ingest(IngestSettings(**overrides)))  # type: ignore[arg-type]


@serve_app.command("notify")
def serve_notify_command(
    database_url: DatabaseUrl = None,
    bootstrap_servers: BootstrapServers = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="/healthz, /readyz, /metrics and POST /inbound/sms port "
            "(OUTAGEDESK_NOTIFY_PORT, default 8001; 0 = off)"
        ),
    ] = None,
) -> None:
    """incidents.lifecycle.v1 → notification jobs → SMS, WeChat, e-mail, webhooks."""
    from services.notify.entrypoints.run import serve_notify
    from services.notify.service_settings import NotifyServiceSettings

    overrides = _overrides(database_url, bootstrap_servers, notify_port=port)
    _run(serve_notify(NotifyServiceSettings(**overrides)))  # type: ignore[arg-type]


@serve_app.command("incidents")
def serve_incidents_command(
    database_url: DatabaseUrl = None,
    bootstrap_servers: BootstrapServers = None,
    no_api: Annotated[bool, typer.Option("--no-api", help="Consumer, timers, relay only")] = False,
    api_only: Annotated[bool, typer.Option("--api-only", help="The HTTP API only")] = False,
) -> None:
    """grid.signals.v1 → incidents (PostgreSQL) → incidents.lifecycle.v1, plus the HTTP API."""
    from services.incidents.entrypoints.run import serve_incidents
    from services.incidents.settings import IncidentsSettings

    if no_api and api_only:
        raise typer.BadParameter("--no-api and --api-only exclude each other")
    settings = IncidentsSettings(**_overrides(database_url, bootstrap_servers))  # type: ignore[arg-type]
    _run(serve_incidents(settings, loops=not api_only, api=not no_api))
