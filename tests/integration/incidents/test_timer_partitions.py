"""With several incidents consumers, a process fires the correlator timers of the feeders on
the signals partitions it holds (and of feeders on no known partition); its next wake-up
counts only those. A process that holds no partition yet fires every due feeder, as one
consumer alone does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.common.clock import VirtualClock
from services.common.db import UnitOfWork
from services.incidents import orm
from services.incidents.feeder_cache import FeederStateCache
from services.incidents.handlers import HandlerContext, run_timers
from services.incidents.state_store import bump_feeder, lock_feeder
from tests.integration.incidents.quality_harness import at, build_topology

# feeder → (stored signals partition, stored next wake-up)
FEEDERS: dict[str, tuple[int | None, datetime]] = {
    "F01": (0, at(5)), "F02": (1, at(3)), "F03": (None, at(7)),
}  # fmt: skip


async def stored(sessions: Any) -> None:
    async with UnitOfWork(sessions) as uow:
        for feeder, (partition, wake) in FEEDERS.items():
            await lock_feeder(uow.session, feeder)
            await bump_feeder(uow.session, feeder, wake, partition)
        await uow.commit()


async def fire(sessions: Any, owned: Callable[[], set[int] | None] | None) -> tuple[set[str], Any]:
    """(feeders the timer run acquired, its next wake-up) on a fresh cache."""
    cache = FeederStateCache(build_topology())
    ctx = HandlerContext(cache, VirtualClock(at(10)), owned_partitions=owned)
    async with UnitOfWork(sessions) as uow:
        wake = await run_timers(uow, at(10), ctx)
        await uow.commit()
    return set(cache.tokens), wake


class TestTimersOfOwnedPartitions:
    async def test_a_process_fires_only_feeders_on_its_partitions(self, make_sessions: Any) -> None:
        sessions = await make_sessions(1)  # not i1_a: the crash test, often run alongside, uses it
        await stored(sessions)
        assert await fire(sessions, lambda: {0}) == ({"F01", "F03"}, at(5))
        assert await fire(sessions, lambda: {1}) == ({"F02", "F03"}, at(3))
        assert await fire(sessions, lambda: {0, 1}) == ({"F01", "F02", "F03"}, at(3))

    async def test_no_partition_held_fires_every_feeder(self, make_sessions: Any) -> None:
        sessions = await make_sessions(1)  # not i1_a: the crash test, often run alongside, uses it
        await stored(sessions)
        everything = ({"F01", "F02", "F03"}, at(3))
        assert await fire(sessions, None) == everything
        assert await fire(sessions, lambda: None) == everything
        assert await fire(sessions, set) == everything  # rebalancing: nothing held yet

    async def test_a_bump_without_a_partition_keeps_the_stored_one(
        self, make_sessions: Any
    ) -> None:
        sessions = await make_sessions(1)  # not i1_a: the crash test, often run alongside, uses it
        async with UnitOfWork(sessions) as uow:
            await lock_feeder(uow.session, "F01")
            await bump_feeder(uow.session, "F01", None, 4)
            await bump_feeder(uow.session, "F01", None)  # an operator's write: not known
            await uow.commit()
        t = orm.feeder_versions
        async with UnitOfWork(sessions) as uow:
            row = (await uow.session.execute(sa.select(t.c.partition, t.c.version))).one()
        assert (row.partition, row.version) == (4, 2)


class TestSlaDeadlinesOfOwnedPartitions:
    async def test_a_process_fires_only_deadlines_of_incidents_on_its_partitions(
        self, make_sessions: Any
    ) -> None:
        """Deadlines of incidents on feeders known to arrive on another consumer's
        partitions are left to it; a feeder with no known partition (F03) or no row at all
        (F09: voltage only) is everyone's."""
        from services.incidents.domain.model import Incident
        from services.incidents.quality_orm import sla_deadlines
        from services.incidents.sla_store import due_rows, next_pending
        from services.incidents.state_store import IncidentMeta, save_incidents

        sessions = await make_sessions(1)  # not i1_a: the crash test, often run alongside, uses it
        await stored(sessions)
        due = {"I-F01": at(4), "I-F02": at(2), "I-F03": at(6), "I-F09": at(8)}
        async with UnitOfWork(sessions) as uow:
            for iid, due_at in due.items():
                inc = Incident(iid, "outage", "detected", iid[2:], "urban", at(0))
                await save_incidents(uow.session, [(inc, IncidentMeta())], at(0))
                await uow.session.execute(sa.insert(sla_deadlines).values(
                    incident_id=iid, target="acknowledge", area="urban", started_at=at(0),
                    at_risk_at=due_at, due_at=due_at, status="on_track", at_risk_emitted=False,
                    breached_emitted=False, completed=False,
                ))  # fmt: skip
            await uow.commit()

        async def picked(owned: set[int] | None) -> tuple[set[str], datetime | None]:
            async with UnitOfWork(sessions) as uow:
                rows = await due_rows(uow.session, at(10), owned)
                return {r.incident_id for r in rows}, await next_pending(uow.session, owned)

        assert await picked({0}) == ({"I-F01", "I-F03", "I-F09"}, at(4))
        assert await picked({1}) == ({"I-F02", "I-F03", "I-F09"}, at(2))
        assert await picked(None) == (set(due), at(2))
