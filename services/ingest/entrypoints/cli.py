"""Commands of the ingest area: ``replay`` and ``dead-letters export|replay``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

dead_letters_app = typer.Typer(
    help="Browse and re-submit rejected input (table ingest.dead_letters).",
    no_args_is_help=True,
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Database URL (default: OUTAGEDESK_DATABASE_URL)"),
]
BootstrapServers = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers", help="Kafka bootstrap servers (default: OUTAGEDESK_KAFKA_…)"
    ),
]


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)
    app.add_typer(dead_letters_app, name="dead-letters")


def replay_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Scenario JSONL")],
    speed: Annotated[
        str, typer.Option(help="Time factor: 1 = real time, 60 = a minute a second, 0|max")
    ] = "1",
    bootstrap_servers: BootstrapServers = None,
) -> None:
    """Publish a scenario file to Kafka, paced by each line's ``at``."""
    from services.common.bus.kafka import KafkaBus
    from services.common.scenario import ScenarioError, read_scenario
    from services.common.settings import CommonSettings
    from services.ingest.entrypoints.replay import parse_speed, replay_scenario

    try:
        factor = parse_speed(speed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--speed") from exc
    settings = CommonSettings()
    servers = bootstrap_servers or settings.kafka_bootstrap_servers

    async def run() -> int:
        bus = KafkaBus(servers, settings.kafka_timeout_s)
        try:
            return await replay_scenario(
                read_scenario(file), bus, speed=factor, sleep=asyncio.sleep
            )
        finally:
            await bus.close()

    try:
        sent = asyncio.run(run())
    except ScenarioError as exc:
        print(f"{file}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    print(f"sent {sent} messages from {file} to {servers}")


@dead_letters_app.command("export")
def export_command(
    fmt: Annotated[str, typer.Option("--format", help="Output format (jsonl)")] = "jsonl",
    database_url: DatabaseUrl = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")
    ] = None,
) -> None:
    """Write every stored dead letter, one JSON object a line, in id order."""
    import orjson

    from services.common.db import create_engine, session_factory
    from services.common.settings import CommonSettings
    from services.ingest.entrypoints.dead_letters import iter_dead_letters

    if fmt != "jsonl":
        raise typer.BadParameter("only jsonl is supported", param_hint="--format")
    url = database_url or CommonSettings().database_url

    async def run() -> int:
        engine = create_engine(url)
        out = output.open("wb") if output is not None else sys.stdout.buffer
        n = 0
        try:
            async for row in iter_dead_letters(session_factory(engine)):
                out.write(orjson.dumps(row.as_wire(), option=orjson.OPT_APPEND_NEWLINE))
                n += 1
        finally:
            out.flush()
            if output is not None:
                out.close()
            await engine.dispose()
        return n

    n = asyncio.run(run())
    if output is not None:
        print(f"exported {n} dead letters to {output}")


@dead_letters_app.command("replay")
def replay_dead_letters_command(
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="Dead letter id (repeatable)")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter not yet replayed")] = False,
    database_url: DatabaseUrl = None,
    bootstrap_servers: BootstrapServers = None,
) -> None:
    """Re-submit stored dead letters to their original topic and mark them replayed."""
    from services.common.bus.kafka import KafkaBus
    from services.common.clock import WallClock
    from services.common.db import create_engine, session_factory
    from services.common.settings import CommonSettings
    from services.ingest.entrypoints.dead_letters import replay_dead_letters

    if bool(ids) == all_:
        raise typer.BadParameter("give --id N (one or more) or --all")
    settings = CommonSettings()
    url = database_url or settings.database_url
    servers = bootstrap_servers or settings.kafka_bootstrap_servers

    async def run() -> list[int]:
        engine = create_engine(url)
        bus = KafkaBus(servers, settings.kafka_timeout_s)
        try:
            producer = await bus.producer(client_id="outagedesk-dead-letter-replay")
            return await replay_dead_letters(
                session_factory(engine), producer, WallClock(), ids=None if all_ else ids
            )
        finally:
            await bus.close()
            await engine.dispose()

    done = asyncio.run(run())
    print(f"replayed {len(done)} dead letters" + (f": {done}" if len(done) <= 20 else ""))
