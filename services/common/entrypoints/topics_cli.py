"""``outagedesk topics create``: create every DESIGN topic with a chosen partition count.

Services create the topics they use on start-up, but with one partition; a deployment runs
this first so that ``grid.signals.v1`` (keyed by feeder) has as many partitions as it will
ever have incidents consumers. Kafka never lowers a partition count and re-keying an
existing topic would reorder one feeder's evidence, so choose the count up front.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Protocol

import typer

DEFAULT_PARTITIONS = 6


class TopicCreator(Protocol):
    """The part of the bus port (:class:`services.common.bus.base.Bus`) this command uses."""

    async def create_topics(self, topics: Sequence[str], partitions: int = 1) -> None: ...


topics_app = typer.Typer(help="Kafka topics of OutageDesk.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(topics_app, name="topics")


async def create_all_topics(
    bus: TopicCreator,
    names: Sequence[str],
    *,
    partitions: int,
    wait_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Create ``names`` (existing ones are left alone), retrying broker errors for up to
    ``wait_s`` seconds: a deployment may start this job before the broker answers.
    Returns the number of attempts it took."""
    from services.common.backoff import Backoff
    from services.common.bus.base import BusError

    deadline = monotonic() + wait_s
    backoff = Backoff(initial_s=0.5, max_s=10.0)
    attempts = 0
    while True:
        attempts += 1
        try:
            await bus.create_topics(list(names), partitions=partitions)
            return attempts
        except (BusError, OSError, TimeoutError) as exc:
            delay = backoff.next_delay()
            if monotonic() + delay > deadline:
                raise BusError(f"topics not created after {attempts} attempts: {exc}") from exc
            typer.echo(f"broker not ready ({exc}); retrying in {delay:.1f}s", err=True)
            await sleep(delay)


@topics_app.command("create")
def create_topics_command(
    partitions: Annotated[
        int,
        typer.Option(
            min=1,
            help="Partitions per topic; incidents and notify consumers beyond this idle",
        ),
    ] = DEFAULT_PARTITIONS,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", help="Default: OUTAGEDESK_KAFKA_BOOTSTRAP_SERVERS"),
    ] = None,
    prefix: Annotated[
        str, typer.Option(help="Prefix for every topic name (isolated test runs)")
    ] = "",
    wait_s: Annotated[
        float, typer.Option("--wait-s", min=0, help="Keep retrying an unreachable broker")
    ] = 120.0,
) -> None:
    """Create every topic of DESIGN section 3 (replication factor 1; see deploy/README.md)."""
    from schemas.topics import TOPICS
    from services.common.bus.kafka import KafkaBus
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    servers = bootstrap_servers or settings.kafka_bootstrap_servers
    names = [f"{prefix}{name}" for name in TOPICS]

    async def run() -> None:
        bus = KafkaBus(servers, settings.kafka_timeout_s)
        try:
            await create_all_topics(bus, names, partitions=partitions, wait_s=wait_s)
        finally:
            await bus.close()

    asyncio.run(run())
    typer.echo(f"topics ready on {servers} ({partitions} partitions if new): {', '.join(names)}")
