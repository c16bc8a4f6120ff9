"""``outagedesk topology load FILE``: validate a topology file and store it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

MAX_ERRORS_SHOWN = 200


def register(app: typer.Typer) -> None:
    topology_app = typer.Typer(help="Network topology (reference data).")
    topology_app.command("load")(load_command)
    app.add_typer(topology_app, name="topology")


def load_command(
    file: Annotated[Path, typer.Argument(help="Topology JSON file or directory of CSV files")],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Database URL (default: OUTAGEDESK_DATABASE_URL or the demo's)"
        ),
    ] = None,
) -> None:
    """Load FILE into schema topology (idempotent upsert; bumps the topology version).

    A file with errors is rejected as a whole: every error is printed and nothing is loaded
    (exit status 2).
    """
    from services.common.settings import CommonSettings
    from services.common.topology.loader import TopologyError
    from services.common.topology.loading import load_file_into_database

    settings = CommonSettings()
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    # TODO(topology.changed.v1): pass on_loaded= a publisher once the bus wiring exists.
    try:
        topo = asyncio.run(load_file_into_database(settings.database_url, file))
    except TopologyError as exc:
        for error in exc.errors[:MAX_ERRORS_SHOWN]:
            typer.echo(error, err=True)
        if len(exc.errors) > MAX_ERRORS_SHOWN:
            typer.echo(f"... and {len(exc.errors) - MAX_ERRORS_SHOWN} more", err=True)
        typer.echo(f"{file}: {len(exc.errors)} error(s); nothing loaded", err=True)
        raise typer.Exit(2) from None
    shown = settings.masked()["database_url"]
    typer.echo(
        f"loaded topology version {topo.version} into {shown}: {len(topo.feeders)} feeders, "
        f"{len(topo.devices)} devices, {len(topo.transformers)} transformers, "
        f"{len(topo.customers)} customers"
    )
