"""``outagedesk serve ingest|incidents|notify``: run one service in this process.

Each subcommand imports its service lazily, so ``outagedesk --help`` stays fast. Other
services add their subcommand to :data:`serve_app` here.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

serve_app = typer.Typer(
    help="Run one service (production wiring: Kafka, PostgreSQL).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")


@serve_app.command("ingest")
def serve_ingest_command(
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: OUTAGEDESK_DATABASE_URL")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", help="Default: OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS"),
    ] = None,
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

    overrides: dict[str, object] = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if bootstrap_servers is not None:
        overrides["kafka_bootstrap_servers"] = bootstrap_servers
    if metrics_port is not None:
        overrides["ingest_metrics_port"] = metrics_port
    settings = IngestSettings(**overrides)  # type: ignore[arg-type]
    asyncio.run(serve_ingest(settings))


@serve_app.command("notify")
def serve_notify_command(
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: OUTAGEDESK_DATABASE_URL")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", help="Default: OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS"),
    ] = None,
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

    overrides: dict[str, object] = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if bootstrap_servers is not None:
        overrides["kafka_bootstrap_servers"] = bootstrap_servers
    if port is not None:
        overrides["notify_port"] = port
    settings = NotifyServiceSettings(**overrides)  # type: ignore[arg-type]
    asyncio.run(serve_notify(settings))


@serve_app.command("incidents")
def serve_incidents_command(
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: OUTAGEDESK_DATABASE_URL")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", help="Default: OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS"),
    ] = None,
    no_api: Annotated[bool, typer.Option("--no-api", help="Consumer, timers, relay only")] = False,
    api_only: Annotated[bool, typer.Option("--api-only", help="The HTTP API only")] = False,
) -> None:
    """grid.signals.v1 → incidents (PostgreSQL) → incidents.lifecycle.v1, plus the HTTP API."""
    from services.incidents.entrypoints.run import serve_incidents
    from services.incidents.settings import IncidentsSettings

    if no_api and api_only:
        raise typer.BadParameter("--no-api and --api-only exclude each other")
    overrides: dict[str, object] = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if bootstrap_servers is not None:
        overrides["kafka_bootstrap_servers"] = bootstrap_servers
    settings = IncidentsSettings(**overrides)  # type: ignore[arg-type]
    asyncio.run(serve_incidents(settings, loops=not api_only, api=not no_api))
