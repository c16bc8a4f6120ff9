"""``outagedesk incidents export``: one JSON line per incident (DESIGN section 14)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

incidents_app = typer.Typer(help="Incidents stored by the incidents service.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")


@incidents_app.command("export")
def export_command(
    fmt: Annotated[str, typer.Option("--format", help="Only jsonl")] = "jsonl",
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: OUTAGEDESK_DATABASE_URL")
    ] = None,
) -> None:
    """Every incident's snapshot plus customers_interrupted, customer_minutes and impact."""
    if fmt != "jsonl":
        raise typer.BadParameter("only --format jsonl is supported")
    from services.common.settings import CommonSettings

    url = database_url or CommonSettings().database_url
    asyncio.run(_export(url))


async def _export(url: str) -> None:
    import orjson

    from services.common.clock import WallClock
    from services.common.db import UnitOfWork, create_engine, session_factory
    from services.incidents.incident_queries import export_incidents

    engine = create_engine(url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            async for item in export_incidents(uow.session, WallClock().now()):
                sys.stdout.buffer.write(orjson.dumps(item) + b"\n")
    finally:
        await engine.dispose()
