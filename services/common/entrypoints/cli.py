"""``outagedesk migrate``: apply (or undo) the database migrations of every schema."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)


def migrate_command(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Database URL (default: OUTAGEDESK_DATABASE_URL or the demo's)"
        ),
    ] = None,
    downgrade: Annotated[
        str | None,
        typer.Option("--downgrade", metavar="SCHEMA", help="Downgrade this schema instead"),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Revision to reach (default: head, or base with --downgrade)"),
    ] = None,
) -> None:
    """Upgrade every schema (topology, ingest, incidents, notify) to its newest revision."""
    from services.common import migrate as migrations
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    url = settings.database_url
    shown = settings.masked()["database_url"]
    if downgrade is not None:
        asyncio.run(migrations.downgrade(url, downgrade, target or "base"))
        print(f"downgraded {downgrade} to {target or 'base'} on {shown}")
        return
    asyncio.run(migrations.migrate(url, target or "head"))
    print(f"migrated {', '.join(migrations.SCRIPT_LOCATIONS)} to {target or 'head'} on {shown}")
