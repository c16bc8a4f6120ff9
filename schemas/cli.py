"""``outagedesk schemas export [--check]``: regenerate or verify the published contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    schemas_app = typer.Typer(help="Wire contracts: JSON Schemas and AsyncAPI.")

    @schemas_app.command("export")
    def export(
        check: Annotated[
            bool, typer.Option("--check", help="Only verify that the committed files are current.")
        ] = False,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Directory to write into (default: the schemas package)."),
        ] = None,
    ) -> None:
        """Generate schemas/json/<topic>.json and schemas/asyncapi.yaml from the models."""
        from schemas.export import SCHEMAS_DIR, stale_files, write_all

        root = out or SCHEMAS_DIR
        if check:
            stale = stale_files(root)
            for relative in stale:
                typer.echo(f"stale: {relative}", err=True)
            if stale:
                typer.echo("run `outagedesk schemas export` and commit the result", err=True)
                raise typer.Exit(1)
            typer.echo("schemas up to date")
            return
        written = write_all(root)
        for relative in written:
            typer.echo(f"wrote {root / relative}")
        if not written:
            typer.echo("schemas up to date")

    app.add_typer(schemas_app, name="schemas")
