"""The ``outagedesk`` command line.

Each area contributes its commands from its own ``entrypoints/cli.py`` through a
``register(app)`` function; heavy imports stay inside the command functions so that
``outagedesk --help`` is fast.
"""

from __future__ import annotations

import importlib

import typer

# Modules that add commands; each defines ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = (
    "services.demo.entrypoints.cli",
    "services.incidents.entrypoints.token_cli",
    "schemas.cli",
    "services.common.topology.cli",
    "services.common.entrypoints.cli",
    "services.common.entrypoints.serve_cli",
    "services.common.entrypoints.topics_cli",
    "services.ingest.entrypoints.cli",
    "services.incidents.entrypoints.cli",
    "services.incidents.entrypoints.impact_cli",
    "services.incidents.entrypoints.report_cli",
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="outagedesk",
        help="Outage and voltage incident response for electric distribution utilities.",
        no_args_is_help=True,
        add_completion=False,
    )
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)
    return app


def main() -> None:
    build_app()()


if __name__ == "__main__":
    main()
