"""``outagedesk replay FILE``: publish a scenario (DESIGN section 14) to the bus.

In real time by default (gaps between the lines' ``at`` are waited out, divided by
``--speed``), or as fast as possible with ``--speed 0`` / ``--speed max``. Lines that are
due together go out in one acknowledged send.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from services.common.bus.base import Bus, OutMessage
from services.common.scenario import ScenarioLine

Sleep = Callable[[float], Awaitable[None]]
MAX_BATCH = 1000


def parse_speed(text: str) -> float | None:
    """``max`` or ``0`` → None (as fast as possible); else a positive factor."""
    if text.strip().lower() in {"max", "0", "0.0"}:
        return None
    speed = float(text)
    if speed <= 0:
        raise ValueError("speed must be positive, 0 or 'max'")
    return speed


async def replay_scenario(
    lines: Iterable[ScenarioLine],
    bus: Bus,
    *,
    speed: float | None,
    sleep: Sleep,
    monotonic: Callable[[], float] = time.monotonic,
    client_id: str = "outagedesk-replay",
) -> int:
    """Publish ``lines`` in order, paced by their ``at`` (``speed`` None: no pacing);
    the number of messages sent. Topics are created on first sight."""
    producer = await bus.producer(client_id=client_id)
    known: set[str] = set()
    pending: list[OutMessage] = []
    sent = 0
    first_at = None
    started = monotonic()

    async def flush() -> None:
        nonlocal sent
        if pending:
            await producer.send(pending)
            sent += len(pending)
            pending.clear()

    try:
        for line in lines:
            if line.topic not in known:
                await flush()
                await bus.create_topics([line.topic])
                known.add(line.topic)
            if speed is not None:
                first_at = first_at or line.at
                due = (line.at - first_at).total_seconds() / speed
                wait = due - (monotonic() - started)
                if wait > 0:
                    await flush()
                    await sleep(wait)
            pending.append(OutMessage(line.topic, line.value, line.key))
            if len(pending) >= MAX_BATCH:
                await flush()
        await flush()
    finally:
        await producer.stop()
    return sent
