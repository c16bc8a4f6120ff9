"""Normalise a consumed batch into the messages to produce and the dead letters to store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.topics import DEAD_LETTER, SIGNALS
from services.common.bus.base import OutMessage, Record
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.normalise import process
from services.ingest.domain.results import DeadLetter, Signal


@dataclass(slots=True)
class NormalisedBatch:
    """What one batch turns into; ``messages`` keep the batch's order."""

    messages: list[OutMessage] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    signals: int = 0
    duplicates: int = 0
    events_in: Counter[str] = field(default_factory=Counter)  # by topic
    dead_by_code: Counter[str] = field(default_factory=Counter)


def normalise_batch(
    records: Sequence[Record], now: datetime, topology: Topology, dedup: DedupWindow
) -> NormalisedBatch:
    """Signals to ``grid.signals.v1`` keyed by feeder and dead letters to
    ``grid.dead-letter.v1`` under the original key; duplicates produce nothing. Marks new
    event ids pending in ``dedup`` (the caller commits or rolls back the window)."""
    out = NormalisedBatch()
    messages = out.messages
    for r in records:
        result = process(r.value, r.topic, r.key, r.partition, r.offset, now, topology, dedup)
        if type(result) is Signal:
            messages.append(OutMessage(SIGNALS, result.to_json(), result.key))
            out.signals += 1
        elif type(result) is DeadLetter:
            messages.append(OutMessage(DEAD_LETTER, result.to_json(), r.key))
            out.dead_letters.append(result)
            out.dead_by_code[result.code] += 1
        else:
            out.duplicates += 1
    out.events_in.update(r.topic for r in records)
    return out
