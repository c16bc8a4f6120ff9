"""Independent report queries side by side on a second connection (PostgreSQL only).

The reliability report's statements fall into two rounds that each hold independent work
(the Major Event Day threshold beside the month roll-ups; the per-customer CEMI grouping
beside the remaining sums), so on PostgreSQL the second of each pair runs in a session of
its own on the same engine and the server works on both at once.

Only when that changes nothing a caller can see: the session must be bound to an engine
(not to a connection a test or caller holds a transaction on) and must not be inside a
transaction yet, so there are no uncommitted writes of the caller that a second connection
would miss. Each statement already reads its own READ COMMITTED snapshot, so two
connections see the database no differently than one. Anywhere else (SQLite, a session in
a transaction) both parts run one after the other on the session itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.incidents.report_sql import Dialect

A = TypeVar("A")
B = TypeVar("B")


async def tune(session: AsyncSession) -> None:
    """Per-transaction settings of the report statements (PostgreSQL): JIT compilation
    costs more than it saves on these sub-second scans, and the per-customer grouping must
    not spill to disk."""
    if Dialect.of(session).postgres:
        await session.execute(sa.text("SET LOCAL jit = off"))
        await session.execute(sa.text("SET LOCAL work_mem = '64MB'"))


class Lanes:
    """The report's session, and a second one on the same engine when that is safe.

    Use as ``async with Lanes(session) as lanes``: the second session (one connection,
    one read-only transaction for every ``both`` of the report) is closed on leaving.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        bind = session.bind
        fresh = not session.in_transaction()
        self.engine = (
            bind
            if isinstance(bind, AsyncEngine) and fresh and Dialect.of(session).postgres
            else None
        )
        self._side: AsyncSession | None = None

    @property
    def parallel(self) -> bool:
        """Whether ``both`` runs its second part on another connection."""
        return self.engine is not None

    async def __aenter__(self) -> Lanes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        side, self._side = self._side, None
        if side is not None:
            await side.close()  # rolls its read-only transaction back

    async def both(
        self,
        first: Callable[[AsyncSession], Awaitable[A]],
        second: Callable[[AsyncSession], Awaitable[B]],
    ) -> tuple[A, B]:
        """``first`` on the report's session and ``second`` beside it; both results."""
        if self.engine is None:
            return await first(self.session), await second(self.session)
        side = asyncio.ensure_future(self._run_side(second))
        try:
            a = await first(self.session)
        except BaseException:
            side.cancel()
            await asyncio.gather(side, return_exceptions=True)
            raise
        return a, await side

    async def _run_side(self, part: Callable[[AsyncSession], Awaitable[B]]) -> B:
        if self._side is None:
            assert self.engine is not None
            self._side = AsyncSession(self.engine)
            await tune(self._side)  # begins the side transaction
        return await part(self._side)
