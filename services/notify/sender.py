"""The sender: claim due jobs, re-check them, send through the channels, record outcomes.

One round (:meth:`Sender.send_due`):

1. **claim** (transaction 1): up to ``batch_size`` due jobs, no more than the channels'
   token buckets can pay for now, become ``sending`` with a lease (``next_attempt_at`` =
   now + ``lease``); commit.
2. **re-check**: the jobs' incident families (only the claimed customers' rows),
   ``check_due`` (momentary, restored meanwhile, superseded, already told), then
   ``plan_delivery`` (opt-out, opt-in, channel, language, quiet hours, throttle by
   ``last_message``). A token is taken from the channel's bucket; without one the job is
   deferred to when the bucket refills (not an attempt).
3. **send** (``concurrency`` at a time) and **record** (transaction 2, group commit): the
   attempt, the job outcome (sent / retry with backoff / failed / deferred / cancelled),
   ``last_message`` and the delivery outcome in the outbox, and critical customers'
   escalations. Outcomes that arrive while a commit runs go in the next one, so a message
   waits at most about one commit between the gateway's answer and its own commit.

:meth:`Sender.run_due` pipelines rounds: while one round's messages are on their way and
its outcomes are being committed, the next round is claimed, re-checked and started as
soon as the token buckets hold a round's worth (at most ``pipeline`` rounds in flight),
so the gateway sees a steady stream at the configured rate rather than bursts separated by
the claim and commit of every round. A job whose customer has a job in a round still in
flight is not planned yet but released for ``round_s`` (not an attempt): its re-check
(already told, throttle) must see that round's committed outcome, exactly as if the rounds
had run one after another.

A sender that dies between a gateway's answer and that commit leaves the job ``sending``;
once the lease ends another round claims and sends it again: the one admitted duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.topology.model import Topology
from services.notify.channels.base import Channel
from services.notify.delivery_plan import (
    Dispatch,
    Escalation,
    Planner,
    SendContext,
    escalation_message,
)
from services.notify.domain.decisions import NotifyPolicy
from services.notify.domain.model import JobKey
from services.notify.domain.retry import RetryPolicy
from services.notify.domain.token_bucket import TokenBucket
from services.notify.indexed_state import IndexedNotifyState
from services.notify.outcomes import (
    BeforeCommit,
    Outcome,
    OutcomeWriter,
    release,
    sent_or_failed,
)
from services.notify.queue_repository import QueueRepository
from services.notify.repository import FAMILY_LIMIT, Baseline, StateRepository, from_db

log = structlog.get_logger(__name__)

# Default pacing grid: a job that found its channel's bucket empty is tried again at its
# channel's next free slot rounded up to a multiple of this (see RateSlots), and a sender
# with due jobs but no tokens waits for this much of a second's tokens. The rate stays
# exact on average; rounds stay large enough to be cheap.
MIN_ROUND_S = 0.1
# Outcome commits: one transaction per up to GROUP_SIZE answers, waiting at most
# GROUP_LINGER_S for more. Bigger groups are cheaper; the wait widens the window in which
# a crash re-sends messages the gateway already accepted (each at most once).
GROUP_SIZE = 100
GROUP_LINGER_S = 0.02
# One run_due starts rounds for at most this long (wall time), then lets its rounds finish.
RUN_DUE_MAX_S = 2.0
# Rounds claimed (and re-checked) at once: the next round's database round trips overlap
# the last one's, so their latency does not stall the stream.
CLAIMS_AT_ONCE = 2
# The stages whose jobs the re-check (check_due) looks at in a family; others are not loaded.
RECHECKED_STAGES = ("outage_detected", "etr_set", "etr_changed")
# a round started: (jobs claimed, its sending and recording, whether it claimed all due)
Started = tuple[int, Coroutine[Any, Any, None], bool]
# (seeds, customers, budget) → a round's re-check state kept in memory, or None
KeptState = Callable[[Sequence[str], Sequence[str], int], IndexedNotifyState | None]


@dataclass(frozen=True, slots=True)
class SenderConfig:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    batch_size: int = 200
    concurrency: int = 32
    lease: timedelta = timedelta(minutes=2)
    throttle: timedelta = timedelta(minutes=30)
    crew_on_site_opt_in_default: bool = False
    round_s: float = MIN_ROUND_S  # pacing grid for rate-limited jobs (demo: coarser)
    pipeline: int = 8  # rounds being claimed or sent at once (1: one round at a time)


class Sender:
    """``send_due`` / ``run_due`` on any clock; see the module docstring."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        channels: Mapping[str, Channel],
        topology: Callable[[], Topology],
        *,
        buckets: Mapping[str, TokenBucket] | None = None,
        policy: NotifyPolicy | None = None,
        retry: RetryPolicy | None = None,
        config: SenderConfig | None = None,
        operators: tuple[Channel, str] | None = None,
        before_commit: BeforeCommit | None = None,
        on_committed: Callable[[], None] | None = None,
        on_cancelled: Callable[[Sequence[JobKey]], None] | None = None,
        on_sent: Callable[[Sequence[JobKey]], None] | None = None,
        sole_writer: bool = False,
        kept_state: KeptState | None = None,
    ) -> None:
        """``sole_writer``: this sender is the only writer of ``last_message`` (the demo),
        so each customer's last message is read once and then kept up to date from the
        outcomes this sender commits, instead of re-read every round. ``kept_state``: a
        round's re-check state from state kept in memory (see
        :func:`services.notify.sender_view.round_state`), or None to read it from the
        database; ``on_cancelled`` / ``on_sent`` keep that state's jobs up to date."""
        self._sessions = sessions
        self._clock = clock
        self._channels = dict(channels)
        self._buckets = dict(buckets or {})
        self.config = config or SenderConfig()
        self._planner = Planner(
            topology, self._channels, self._buckets, policy or NotifyPolicy(), self.config.tz,
            self.config.throttle, self.config.crew_on_site_opt_in_default, self.config.round_s,
        )  # fmt: skip
        self._retry = retry or RetryPolicy()
        self._operators = operators
        self._writer = OutcomeWriter(sessions, before_commit, on_committed, on_cancelled,
                                     on_sent)  # fmt: skip
        self._kept_state = kept_state
        self.commit_windows_s: list[float] = []  # gateway answer → its commit, per message
        self._busy: Counter[str] = Counter()  # customers with a job in a round in flight
        self._slots: asyncio.Semaphore | None = None  # sends in flight, over all rounds
        self._rounds: set[asyncio.Task[None]] = set()  # rounds sending and recording
        self.sent = 0
        self.reclaimed = 0
        # customer → last message time (None: none yet); only under sole_writer
        self._last_sent: dict[str, datetime | None] | None = {} if sole_writer else None
        # Under sole_writer, once run_due found nothing due: no job is due before this
        # (None: no job queued) until jobs_added says otherwise; run_due then skips the
        # claim and the query while nothing can be due.
        self._sole_writer = sole_writer
        self._quiet = False
        self._quiet_until: datetime | None = None
        self._added = 0  # jobs_added calls: a look at the queue before one is stale

    def share_queue(self) -> None:
        """Jobs may be added while run_due runs from now on (a consumer on its own loop,
        whose commits jobs_added cannot follow): run_due always looks at the queue."""
        self._sole_writer = False
        self._quiet = False

    def jobs_added(self, earliest_due: datetime) -> None:
        """New jobs were queued (or are about to be), the first due at ``earliest_due``."""
        self._added += 1
        if self._quiet_until is None or earliest_due < self._quiet_until:
            self._quiet_until = earliest_due

    def _claim_limit(self) -> int:
        """How many jobs the buckets can pay for now (an unlimited channel: a full batch)."""
        best = 0.0
        for name in self._channels:
            bucket = self._buckets.get(name)
            best = max(best, bucket.tokens if bucket is not None else math.inf)
        return int(min(self.config.batch_size, math.floor(best)))

    async def send_due(self, now: datetime | None = None) -> int:
        """One whole round at ``now`` (default: the clock): claim, re-check, send and record;
        the number of jobs claimed."""
        self._quiet = False
        started = await self._start_round(now)
        if started is None:
            return 0
        claimed, work, _ = started
        await work
        return claimed

    async def _start_round(self, now: datetime | None = None) -> Started | None:
        """Claim and plan a round; (jobs claimed, the round's sending and recording, whether
        it claimed every job due) or None when nothing was due. The round takes the tokens
        it may need before claiming, so two rounds can be claimed at once without
        overdrawing the buckets."""
        limit = self._claim_limit()
        if limit <= 0:  # (another round took the tokens): nothing to do, but jobs may be due
            return 0, _nothing(), False
        # Pay for the round now: the buckets refill while it is claimed and re-checked,
        # instead of overflowing with tokens set aside for it. Unused ones go back.
        prepaid = {
            name: bucket.take_up_to(limit)
            for name, bucket in self._buckets.items()
            if name in self._channels
        }
        try:
            return await self._claim_and_plan(now or self._clock.now(), limit, prepaid)
        finally:
            for name, left in prepaid.items():
                if left > 0:
                    self._buckets[name].give_back(left)

    async def _claim_and_plan(
        self, now: datetime, limit: int, prepaid: dict[str, float]
    ) -> Started | None:
        # One transaction claims the round and reads what its re-check needs; it commits
        # (the claim is durable) before any message goes out.
        async with UnitOfWork(self._sessions) as uow:
            rows, all_due = await QueueRepository(uow.session).claim_due(
                now, limit, self.config.lease
            )
            if not rows:
                return None
            # all_due: no other job was due at ``now``, so the next claim would find none
            # (a round only moves the jobs it holds past ``now``, or ends them)
            reclaimed = sum(1 for r in rows if r.status == "sending")
            later = now + timedelta(seconds=self.config.round_s)
            held = [release(r, now, later, "customer_in_flight") for r in rows
                    if r.customer_id in self._busy]  # fmt: skip
            if held:
                rows = [r for r in rows if r.customer_id not in self._busy]
            customers = {r.customer_id for r in rows}
            self._busy.update(customers)  # before any await: the next claim sees them
            try:
                ctx = await self._load(uow.session, rows) if rows else SendContext()
                await uow.commit()
                plans = self._planner.plan(rows, ctx, now, prepaid)
            except BaseException:
                self._busy.subtract(customers)
                self._busy += Counter()  # drop the zero counts
                raise
        if reclaimed:
            self.reclaimed += reclaimed
            log.warning("re-sending jobs whose sender died (lease over)", jobs=reclaimed)
        plans.immediate.extend(held)
        work = self._send_and_record(
            plans.immediate, plans.dispatches, plans.escalations, customers
        )
        return len(rows) + len(held), work, all_due

    async def _load(self, session: AsyncSession, rows: Sequence[Any]) -> SendContext:
        customers = sorted({r.customer_id for r in rows})
        ctx = SendContext()
        repo, queue = StateRepository(session), QueueRepository(session)
        # All the round's incidents at once: a few queries per link level, not per job.
        # Each seed keeps its own family budget.
        seeds = sorted({r.incident_id for r in rows})
        budget = FAMILY_LIMIT * len(seeds)
        kept = self._kept_state(seeds, customers, budget) if self._kept_state else None
        if kept is not None:
            ctx.state = kept
        else:
            await repo.load_family(ctx.state, Baseline(), seeds, customers, budget=budget,
                                   job_stages=RECHECKED_STAGES)  # fmt: skip
        ctx.last_sent = await self._last_sent_of(queue, customers)
        ctx.opted_out = await queue.opted_out(customers)
        pairs = [(r.incident_id, r.customer_id) for r in rows if r.stage == "outage_detected"]
        ctx.escalations = await queue.pending_escalations(pairs) if pairs else set()
        return ctx

    async def _last_sent_of(
        self, queue: QueueRepository, customers: Sequence[str]
    ) -> dict[str, datetime]:
        """customer → the time of its last message (customers never told are absent)."""
        known = self._last_sent
        if known is None:
            last = await queue.last_sent(customers)
            return {c: at for c, r in last.items() if (at := from_db(r.at))}
        missing = [c for c in customers if c not in known]
        if missing:
            last = await queue.last_sent(missing)
            for c in missing:
                row = last.get(c)
                known[c] = from_db(row.at) if row is not None else None
        return {c: at for c in customers if (at := known.get(c)) is not None}

    def _remember_sent(self, outcomes: Sequence[Outcome]) -> None:
        """Keep the cached last messages equal to what the committed outcomes wrote (the
        last row of a customer wins, as in ``set_last_messages``)."""
        known = self._last_sent
        if known is None:
            return
        for o in outcomes:
            if o.last_message is not None:
                at = o.last_message["at"]
                known[o.last_message["customer_id"]] = at.astimezone(UTC)

    async def _send_and_record(
        self,
        immediate: list[Outcome],
        dispatches: list[Dispatch],
        escalations: list[Escalation],
        customers: set[str],
    ) -> None:
        try:
            await self._send_and_record_round(immediate, dispatches, escalations)
        finally:
            self._busy.subtract(customers)
            self._busy += Counter()  # drop the zero counts

    async def _send_and_record_round(
        self, immediate: list[Outcome], dispatches: list[Dispatch], escalations: list[Escalation]
    ) -> None:
        queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
        for outcome in immediate:
            queue.put_nowait(outcome)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.concurrency)
        semaphore = self._slots

        async def deliver(d: Dispatch) -> None:
            async with semaphore:
                result = await d.channel.send(d.message)
            outcome = sent_or_failed(d.sending, result, self._clock.now(), self._retry)
            outcome.answered = time.monotonic()
            queue.put_nowait(outcome)

        async def escalate(e: Escalation) -> None:
            queue.put_nowait(await self._escalate(e))

        async def all_sent() -> None:
            async with asyncio.TaskGroup() as sends:
                for d in dispatches:
                    sends.create_task(deliver(d))
                for e in escalations:
                    sends.create_task(escalate(e))
            queue.put_nowait(None)

        async with asyncio.TaskGroup() as group:
            group.create_task(all_sent())
            group.create_task(self._flush(queue))

    async def _escalate(self, e: Escalation) -> Outcome:
        now = self._clock.now()
        row: dict[str, Any] = {"incident_id": e.incident_id, "customer_id": e.customer.id,
                               "at": now, "status": "recorded", "error": None}  # fmt: skip
        if e.cancel_reason is not None:
            row.update(status="cancelled", error=e.cancel_reason)
        elif self._operators is not None:
            channel, url = self._operators
            result = await channel.send(escalation_message(e, url, now))
            # A failed escalation stays pending: the next round of the job retries it.
            row.update(status="sent" if result.ok else "pending", error=result.error)
        log.info("critical customer escalated", incident_id=e.incident_id,
                 customer_id=e.customer.id, status=row["status"])  # fmt: skip
        return Outcome(escalation=row)

    async def _flush(self, queue: asyncio.Queue[Outcome | None]) -> None:
        """Group commit: outcomes are written in groups of up to ``GROUP_SIZE``, waiting
        at most ``GROUP_LINGER_S`` for a group to fill while sends are still running."""
        finished = False
        while not finished:
            group = [await queue.get()]
            deadline = time.monotonic() + GROUP_LINGER_S
            while None not in group and len(group) < GROUP_SIZE:
                if not queue.empty():
                    group.append(queue.get_nowait())
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):  # no task per item, unlike wait_for
                        group.append(await queue.get())
                except TimeoutError:
                    break
            finished = None in group
            outcomes = [o for o in group if o is not None]
            if not outcomes:
                continue
            try:
                recorded = await self._writer.write(outcomes)
            except BaseException:
                if self._last_sent is not None:
                    self._last_sent.clear()  # the commit may or may not have happened
                raise
            self._remember_sent(recorded)
            committed = time.monotonic()
            for o in outcomes:
                if o.answered is not None:
                    self.commit_windows_s.append(committed - o.answered)
                if o.update is not None and o.update.status == "sent":
                    self.sent += 1

    async def next_due(self) -> datetime | None:
        """When the next job is due (or the lease of a claimed one ends)."""
        async with UnitOfWork(self._sessions) as uow:
            return await QueueRepository(uow.session).next_due()

    async def run_due(self, *, drain: bool = True) -> datetime | None:
        """Send everything due now, rounds pipelined (see the module docstring); then the
        next wake-up: the earliest due job, or, when jobs wait for tokens, the time the
        buckets hold a round's worth again.

        Starts no new round after ``RUN_DUE_MAX_S`` of wall time, so a long backlog does
        not keep the caller's loop (topology refresh, stop) waiting. ``drain=False`` (the
        service's own loop) then returns at once, its rounds still sending, and the next
        call carries on with them: no gap in the stream. Otherwise every round started has
        been sent and recorded when it returns. A failed round's error is raised (in an
        ``ExceptionGroup``) after the other rounds were cancelled."""
        if self._quiet and not self._rounds:
            quiet_until = self._quiet_until
            if quiet_until is None or quiet_until > self._clock.now():
                self._claim_limit()  # the buckets refill as a claim's look at them would
                return quiet_until
        self._quiet = False
        until = time.monotonic() + RUN_DUE_MAX_S
        claiming: set[asyncio.Task[Any]] = set()
        sending = self._rounds
        exhausted = False  # a claim found nothing due: start no more rounds
        try:
            while True:
                self._reap()
                if (
                    not exhausted
                    and time.monotonic() < until
                    and not _found_all_due(claiming)
                    and self._may_claim(claiming, sending)
                ):
                    claiming.add(asyncio.create_task(self._start_round()))
                    await asyncio.sleep(0)  # let it take its tokens
                    continue
                if not claiming and (exhausted or not sending or time.monotonic() >= until):
                    break
                more = not exhausted and time.monotonic() < until  # may start rounds later
                for done in await self._wait(claiming | sending, tokens=more):
                    if done not in claiming:
                        continue  # a round finished: reaped above
                    claiming.discard(done)
                    started = done.result()
                    if started is None:
                        exhausted = True
                    else:
                        sending.add(asyncio.create_task(started[1]))
                        exhausted = exhausted or started[2]  # no need to claim again
        except BaseException:
            await _cancel(claiming | sending)
            sending.clear()
            raise
        if drain or exhausted:
            await self.drain()
        elif sending:
            return self._clock.now()  # more due: the rounds in flight carry on meanwhile
        added = self._added
        nxt = await self.next_due()
        now = self._clock.now()
        if nxt is None or nxt > now:
            quiet = self._sole_writer and not self._rounds and added == self._added
            self._quiet, self._quiet_until = quiet, nxt
            return nxt
        refill = self._refill_at(self._round_size())
        return max(now, refill) if refill is not None else now

    async def drain(self) -> None:
        """Wait until every round in flight is sent and recorded (a stopping service)."""
        while self._rounds:
            await asyncio.wait(self._rounds)
            self._reap()

    def _reap(self) -> None:
        """Forget finished rounds; when one failed, cancel the others and raise."""
        done = {t for t in self._rounds if t.done()}
        if not done:
            return
        self._rounds -= done
        errors = [e for t in done if not t.cancelled() and (e := t.exception()) is not None]
        if errors:
            for task in self._rounds:
                task.cancel()
            raise BaseExceptionGroup("sender round failed", errors)

    def _round_size(self) -> int:
        """A pipelined round's jobs: ``round_s`` of the fastest limited channel's tokens."""
        sizes = [
            min(b.capacity, max(1.0, b.rate * self.config.round_s))
            for name, b in self._buckets.items()
            if name in self._channels
        ]
        return int(min(self.config.batch_size, max(sizes))) if sizes else self.config.batch_size

    def _refill_at(self, tokens: float) -> datetime | None:
        """When some channel's bucket holds ``tokens`` (at most its capacity); None when no
        channel is limited."""
        times = [
            b.available_at(min(b.capacity, tokens))
            for name, b in self._buckets.items()
            if name in self._channels
        ]
        return min(times) if times else None

    def _refill_for_round(self) -> datetime | None:
        """When the buckets will hold a round's worth (None: no channel is limited)."""
        return self._refill_at(self._round_size())

    def _may_claim(self, claiming: set[asyncio.Task[Any]], sending: set[asyncio.Task[Any]]) -> bool:
        """Start claiming another round now? At most ``CLAIMS_AT_ONCE`` claims and
        ``pipeline`` rounds in flight; while others run, only once the buckets hold a
        round's worth (alone, whatever they hold, as a single round always did)."""
        if len(claiming) >= CLAIMS_AT_ONCE or len(claiming) + len(sending) >= self.config.pipeline:
            return False
        limit = self._claim_limit()
        return limit >= self._round_size() or (limit > 0 and not claiming and not sending)

    async def _wait(self, tasks: set[asyncio.Task[Any]], *, tokens: bool) -> set[asyncio.Task[Any]]:
        """Until one of ``tasks`` finishes or (``tokens``) the buckets hold a round's
        worth; the finished tasks."""
        waiters: set[asyncio.Future[Any]] = set(tasks)
        sleeper = None
        refill = self._refill_for_round() if tokens else None
        if refill is not None and len(tasks) < self.config.pipeline:
            sleeper = asyncio.ensure_future(self._clock.sleep_until(refill))
            waiters.add(sleeper)
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            return {t for t in tasks if t in done}
        finally:
            if sleeper is not None and not sleeper.done():
                sleeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sleeper


def _found_all_due(claiming: set[asyncio.Task[Any]]) -> bool:
    """A claim already finished (not yet taken up) found every job due: another would
    find none."""
    for task in claiming:
        if task.done() and not task.cancelled() and task.exception() is None:
            started = task.result()
            if started is None or started[2]:
                return True
    return False


async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _nothing() -> None:
    """The work of a round that found no tokens."""
