"""``outagedesk demo`` and ``outagedesk scenario generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

scenario_app = typer.Typer(help="Generate sample counties and storm scenarios.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.add_typer(scenario_app, name="scenario")


TopologyOpt = Annotated[Path | None, typer.Option(help="Topology JSON (default: bundled).")]
ScenarioOpt = Annotated[Path | None, typer.Option(help="Scenario JSONL (default: bundled).")]
SpeedOpt = Annotated[str, typer.Option(help="Virtual seconds per real second, or 'max'.")]
UntilOpt = Annotated[
    str | None,
    typer.Option(help="Run the clock on to this RFC 3339 time (default: last line + 1 h)."),
]
NoServeOpt = Annotated[bool, typer.Option("--no-serve", help="Exit after the summary.")]
DatabaseOpt = Annotated[str | None, typer.Option(help="Default ./outagedesk-demo.db.")]
MessagesOpt = Annotated[Path, typer.Option(help="Where the demo's channels write messages.")]


def demo(
    topology: TopologyOpt = None,
    scenario: ScenarioOpt = None,
    speed: SpeedOpt = "max",
    until: UntilOpt = None,
    no_serve: NoServeOpt = False,
    database_url: DatabaseOpt = None,
    messages: MessagesOpt = Path("outagedesk-demo-messages.jsonl"),
) -> None:
    """Run ingest, incidents and notify in one process on the in-memory bus and SQLite,
    replaying a scenario on a virtual clock; then serve the API and dashboard."""
    import asyncio

    from services.demo.runner import DemoOptions, parse_speed, parse_until, run_demo

    options = DemoOptions(
        topology=topology,
        scenario=scenario,
        speed=parse_speed(speed),
        until=parse_until(until),
        serve=not no_serve,
        database_url=database_url,
        messages=messages,
    )
    raise typer.Exit(asyncio.run(run_demo(options)))


@scenario_app.command("generate")
def generate(
    customers: Annotated[int, typer.Option(min=100, help="Customers in the county.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 7,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("scenario"),
) -> None:
    """Write topology.json, scenario.jsonl (a two-day typhoon) and truth.json."""
    from services.demo.bundle import write_generated

    paths = write_generated(out, customers, seed)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
