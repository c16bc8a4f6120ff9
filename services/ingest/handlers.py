"""Normalise a consumed batch into the messages to produce and the dead letters to store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.topics import DEAD_LETTER, SIGNALS
from services.common.bus.base import OutMessage, Record
from services.common.topology.model import Topology
from services.ingest.domain.dedup import DedupWindow
from services.ingest.domain.enrichment import Locations
from services.ingest.domain.fast_signal import DUPLICATE, FastSignals
from services.ingest.domain.normalise import process
from services.ingest.domain.results import DeadLetter, Signal


@dataclass(slots=True)
class NormalisedBatch:
    """What one batch turns into; ``messages`` keep the batch's order."""

    messages: list[OutMessage] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    signals: int = 0
    duplicates: int = 0
    dead_by_code: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Physical topic names; DESIGN's by default. A prefix isolates a benchmark or test
    run on a shared broker (``prefixed("bench-1.")``)."""

    signals: str = SIGNALS
    dead_letter: str = DEAD_LETTER
    schema_of: Mapping[str, str] = field(default_factory=dict)  # physical → DESIGN input

    @classmethod
    def prefixed(cls, prefix: str, inputs: Sequence[str]) -> TopicNames:
        return cls(
            signals=prefix + SIGNALS,
            dead_letter=prefix + DEAD_LETTER,
            schema_of={prefix + t: t for t in inputs},
        )

    def physical(self, inputs: Sequence[str]) -> list[str]:
        reverse = {v: k for k, v in self.schema_of.items()}
        return [reverse.get(t, t) for t in inputs]


DEFAULT_TOPICS = TopicNames()


def normalise_batch(
    records: Sequence[Record],
    now: datetime,
    topology: Topology | Locations,
    dedup: DedupWindow,
    topics: TopicNames = DEFAULT_TOPICS,
) -> NormalisedBatch:
    """Signals to ``grid.signals.v1`` keyed by feeder and dead letters to
    ``grid.dead-letter.v1`` under the original key; duplicates produce nothing. Marks new
    event ids pending in ``dedup`` (the caller commits or rolls back the window)."""
    out = NormalisedBatch()
    messages = out.messages
    locations = topology if isinstance(topology, Locations) else Locations(topology)
    signals_topic, dead_topic, schema_of = topics.signals, topics.dead_letter, topics.schema_of
    fast = FastSignals(now, locations, dedup).signal
    signals = duplicates = 0
    for r in records:
        topic = r.topic
        hit = fast(r.value, schema_of.get(topic, topic))
        if hit:
            messages.append(OutMessage(signals_topic, hit[1], hit[0]))
            signals += 1
            continue
        if hit is DUPLICATE:
            duplicates += 1
            continue
        # Not certain on the fast path: the full rules decide (and name any dead letter).
        result = process(
            r.value,
            topic,
            r.key,
            r.partition,
            r.offset,
            now,
            locations,
            dedup,
            schema_of.get(topic),
        )
        if type(result) is Signal:
            messages.append(OutMessage(signals_topic, result.to_json(), result.key))
            signals += 1
        elif type(result) is DeadLetter:
            messages.append(OutMessage(dead_topic, result.to_json(), r.key))
            out.dead_letters.append(result)
            out.dead_by_code[result.code] += 1
        else:
            duplicates += 1
    out.signals, out.duplicates = signals, duplicates
    return out
