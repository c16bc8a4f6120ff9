"""Which customer is told what, and when: lifecycle event + notify state → jobs.

:func:`decide` applies one lifecycle event to the :class:`NotifyState` and returns the new
jobs (each also recorded in the state as pending). :func:`check_due` is the second half of
the rule: a job is re-checked when it comes due, because the facts that make it pointless
(the outage was momentary, the customer is back) often arrive after it was created.

Rules (DESIGN section 10), with ``T`` = the momentary threshold (5 min):

- ``outage_detected``: due at the customer's interruption start + T (or at once when the
  event is later than that). Cancelled when it comes due if the incident is momentary or
  cancelled, or the customer is no longer out in any incident of the family. Not created
  when the customer was already told in a linked (nested / merged) incident.
- ``etr_set`` / ``etr_changed``: for every customer still out of an open outage with an
  ETR: the first ETR told in the family is ``etr_set``; later ones only when the ETR moved
  by at least 30 min from the last one told (revision = event seq). Never due before the
  customer's ``outage_detected``; superseded ones are cancelled when due.
- ``crew_on_site``: on ``crew_arrived``, to customers still out (opt-in: the preferences
  drop it for customers who did not ask for it).
- ``restored``: when a verified restore ends an interruption of at least T. Restores
  flagged ``verified: false`` wait until a later event lists the customer again with
  ``verified: true`` (see :mod:`services.notify.domain.model`).
- ``survey``: after a ``restored`` job, for a deterministic sample (hash of incident and
  customer), due ``survey_delay`` after the restore message.
- ``planned_notice``: 7 and 1 days before a planned outage's start; notices whose time has
  passed collapse into one sent at once. A rescheduled start re-notifies; stale notices
  are cancelled when due.
- ``voltage_acknowledged``: to customers added to a voltage incident with ``reported``,
  or listed again with ``reported`` once they report (a later ``scope_changed``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.notify.domain.job_state import Job
from services.notify.domain.model import (
    CustomerEntry,
    IncidentInfo,
    Interruption,
    JobSpec,
    LifecycleEvent,
    Stage,
    parse_time,
)
from services.notify.domain.state import NotifyState

OPEN_OUTAGE_STATUSES = frozenset({"detected", "confirmed", "dispatched", "on_site"})


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    momentary_threshold: timedelta = timedelta(minutes=5)
    etr_change_threshold: timedelta = timedelta(minutes=30)
    planned_notice_days: tuple[int, ...] = (7, 1)
    survey_rate: float = 0.2
    survey_delay: timedelta = timedelta(hours=1)
    survey_salt: str = "outagedesk-survey"


@dataclass(frozen=True, slots=True)
class DueCheck:
    """The verdict of :func:`check_due`: send, or cancel with a reason."""

    send: bool
    reason: str | None = None


SEND = DueCheck(True)


def decide(
    event: LifecycleEvent, state: NotifyState, policy: NotifyPolicy | None = None
) -> list[JobSpec]:
    """Apply ``event`` to ``state`` and return the jobs it calls for (already in ``state``).

    Replaying an event (``seq`` not above the last one applied) changes nothing and returns
    no job; creating a job whose idempotency key exists is skipped too.
    """
    policy = policy or NotifyPolicy()
    info = state.incidents.get(event.incident_id)
    if info is not None and event.seq <= info.last_seq:
        return []
    info = _update_incident(info, event)
    state.incidents[info.id] = info
    added, reported = _apply_added(event, info, state)
    newly_verified = _apply_restored(event, state)

    specs: list[JobSpec] = []
    if info.void or info.merged_into or info.status == "merged":
        return specs
    family = state.family(info.id)
    if info.kind == "outage":
        for interruption in added:
            if not state.told(interruption.customer_id, family, "outage_detected"):
                due = max(interruption.started_at + policy.momentary_threshold, event.occurred_at)
                specs.append(_spec(info, interruption.customer_id, "outage_detected", 0, due))
        if info.etr is not None and info.status in OPEN_OUTAGE_STATUSES:
            specs.extend(_etr_jobs(event, info, state, family, policy))
        if event.type == "crew_arrived":
            for interruption in state.active_customers(info.id):
                due = max(_notice_due(interruption, policy), event.occurred_at)
                specs.append(_spec(info, interruption.customer_id, "crew_on_site", 0, due))
    if info.kind in ("outage", "planned"):
        for interruption in newly_verified:
            specs.extend(_restored_jobs(event, info, interruption, policy))
    if info.kind == "voltage":
        for interruption in reported:
            specs.append(
                _spec(info, interruption.customer_id, "voltage_acknowledged", 0, event.occurred_at)
            )
    if info.kind == "planned":
        specs.extend(_planned_jobs(event, info, state, policy))
    return [spec for spec in specs if state.add_job(spec)]


def touched_incidents(event: LifecycleEvent) -> set[str]:
    """The incidents whose interruptions :func:`decide` may add or change for ``event``:
    its own (customers added, listed again, restored) and those its added customers moved
    from (``moved_to``). A writer that saves only the interruptions of these incidents
    after ``decide`` misses no change."""
    touched = {event.incident_id}
    touched.update(e.moved_from for e in event.customers_added if e.moved_from)
    return touched


def check_due(
    spec: JobSpec,
    state: NotifyState,
    policy: NotifyPolicy | None = None,
    now: datetime | None = None,
) -> DueCheck:
    """Re-check a job when it comes due (at ``now``): still worth sending, or cancel (and why).

    A restore counts once its time has come: the lifecycle may carry it ahead of time (an
    operator's restore entered in advance, clocks ahead), and whether notify has read it
    yet must not decide whether a customer still in the dark is told."""
    policy = policy or NotifyPolicy()
    info = state.incidents.get(spec.incident_id)
    if info is None:
        return SEND
    if info.void:
        return DueCheck(False, f"incident_{info.status}")
    family = state.family(info.id)
    customer = spec.customer_id
    if spec.stage == "outage_detected":
        if not state.out_in_family(customer, family, now):
            return DueCheck(False, "restored_before_notice")
        sent_elsewhere = [
            job
            for job in state.family_jobs(customer, family, ("outage_detected",))
            if job.spec.key != spec.key and job.status == "sent"
        ]
        return DueCheck(False, "already_told") if sent_elsewhere else SEND
    if spec.stage in ("etr_set", "etr_changed", "crew_on_site"):
        if not state.out_in_family(customer, family, now):
            return DueCheck(False, "customer_restored")
        if spec.stage != "crew_on_site":
            etr_jobs = state.family_jobs(customer, family, ("etr_set", "etr_changed"))
            if etr_jobs and etr_jobs[-1].spec.key != spec.key:
                return DueCheck(False, "superseded")
        return SEND
    if spec.stage == "planned_notice":
        if info.status != "scheduled":
            return DueCheck(False, f"planned_{info.status}")
        start = info.planned_start.isoformat() if info.planned_start else None
        if spec.payload.get("planned_start") != start:
            return DueCheck(False, "rescheduled")
    return SEND


def survey_sampled(incident_id: str, customer_id: str, policy: NotifyPolicy) -> bool:
    """Deterministic sample: the same customer and incident always get the same answer."""
    digest = hashlib.sha256(f"{policy.survey_salt}:{incident_id}:{customer_id}".encode())
    bucket = int.from_bytes(digest.digest()[:8], "big") / 2**64
    return bucket < policy.survey_rate


def _update_incident(info: IncidentInfo | None, event: LifecycleEvent) -> IncidentInfo:
    snap = event.incident
    info = info or IncidentInfo(id=event.incident_id)
    info.kind = str(snap.get("kind") or info.kind)
    info.status = str(snap.get("status") or info.status)
    info.detected_at = parse_time(snap.get("detected_at")) or info.detected_at
    info.etr = parse_time(snap.get("etr"))
    info.parent_incident_id = snap.get("parent_incident_id") or info.parent_incident_id
    info.merged_into = snap.get("merged_into") or info.merged_into
    if info.status == "merged" and not info.merged_into:
        info.merged_into = info.parent_incident_id
    info.area = snap.get("area") or info.area
    info.cause = snap.get("cause") or info.cause
    start = snap.get("planned_start") or snap.get("scheduled_start")
    info.planned_start = parse_time(start) or info.planned_start
    info.planned_end = parse_time(snap.get("planned_end") or snap.get("scheduled_end"))
    info.last_seq = event.seq
    return info


def _apply_added(
    event: LifecycleEvent, info: IncidentInfo, state: NotifyState
) -> tuple[list[Interruption], list[Interruption]]:
    """(the new interruptions, the interruptions whose customer reported the problem with
    this event: new ones added with ``reported`` and known ones listed again with it)."""
    added: list[Interruption] = []
    reported: list[Interruption] = []
    if info.kind == "planned" and info.status == "scheduled":
        state.planned_customers.setdefault(info.id, set()).update(
            e.customer_id for e in event.customers_added
        )
        return added, reported
    entries = list(event.customers_added)
    if info.kind == "planned" and event.type == "planned_started":
        known = {e.customer_id for e in entries}
        entries += [
            CustomerEntry(customer_id=c)
            for c in sorted(state.planned_customers.get(info.id, ()))
            if c not in known
        ]
    for entry in entries:
        key = (info.id, entry.customer_id)
        existing = state.interruptions.get(key)
        if existing is not None:
            # A customer already in a voltage incident who reports it later is listed again
            # with ``reported`` (scope_changed); the upgrade sticks, so it is acted on once.
            if entry.reported and not existing.reported:
                existing.reported = True
                reported.append(existing)
            continue
        start = entry.at or info.detected_at or event.occurred_at
        if info.kind == "planned" and entry.at is None:
            start = event.occurred_at
        interruption = Interruption(
            info.id, entry.customer_id, start, moved_from=entry.moved_from, reported=entry.reported
        )
        state.interruptions[key] = interruption
        origin = state.interruptions.get((entry.moved_from or "", entry.customer_id))
        if origin is not None:
            origin.moved_to = info.id
        added.append(interruption)
        if interruption.reported:
            reported.append(interruption)
    return added, reported


def _apply_restored(event: LifecycleEvent, state: NotifyState) -> list[Interruption]:
    newly_verified: list[Interruption] = []
    for entry in event.customers_restored:
        interruption = state.interruptions.get((event.incident_id, entry.customer_id))
        if interruption is None or interruption.restore_verified:
            continue
        if interruption.restored_at is None:
            interruption.restored_at = entry.at or event.occurred_at
        if entry.verified:
            interruption.restore_verified = True
            newly_verified.append(interruption)
    return newly_verified


def _etr_jobs(
    event: LifecycleEvent,
    info: IncidentInfo,
    state: NotifyState,
    family: frozenset[str],
    policy: NotifyPolicy,
) -> list[JobSpec]:
    assert info.etr is not None
    specs: list[JobSpec] = []
    etr = info.etr.isoformat()
    parsed: dict[str, datetime | None] = {}  # ETRs told, parsed once per event
    for interruption in state.active_customers(info.id):
        customer = interruption.customer_id
        # last_told_etr and told(etr_set) in one look at the customer's jobs
        told = state.family_jobs(customer, family, ("etr_set", "etr_changed"))
        last = _etr_of(told[-1], parsed) if told else None
        if last is None and not any(job.spec.stage == "etr_set" for job in told):
            due = max(_notice_due(interruption, policy), event.occurred_at)
            specs.append(_spec(info, customer, "etr_set", 0, due, {"etr": etr}))
        elif last is None or abs(info.etr - last) >= policy.etr_change_threshold:
            due = max(_notice_due(interruption, policy), event.occurred_at)
            payload = {"etr": etr}
            if last is not None:
                payload["previous_etr"] = last.isoformat()
            specs.append(_spec(info, customer, "etr_changed", event.seq, due, payload))
    return specs


def _etr_of(job: Job, parsed: dict[str, datetime | None]) -> datetime | None:
    """The ETR an etr_set / etr_changed job told (as :meth:`NotifyState.last_told_etr`);
    ``parsed`` memoises the parsing (thousands of customers were told the same ETR)."""
    value = job.spec.payload.get("etr")
    if not isinstance(value, str):
        return None
    if value not in parsed:
        parsed[value] = datetime.fromisoformat(value)
    return parsed[value]


def _restored_jobs(
    event: LifecycleEvent, info: IncidentInfo, interruption: Interruption, policy: NotifyPolicy
) -> list[JobSpec]:
    assert interruption.restored_at is not None
    if interruption.restored_at - interruption.started_at < policy.momentary_threshold:
        return []  # a momentary for this customer: they were never told it was out
    due = max(event.occurred_at, interruption.restored_at)
    payload = {"restored_at": interruption.restored_at.isoformat()}
    specs = [_spec(info, interruption.customer_id, "restored", 0, due, payload)]
    if survey_sampled(info.id, interruption.customer_id, policy):
        specs.append(_spec(info, interruption.customer_id, "survey", 0, due + policy.survey_delay))
    return specs


def _planned_jobs(
    event: LifecycleEvent, info: IncidentInfo, state: NotifyState, policy: NotifyPolicy
) -> list[JobSpec]:
    if info.status != "scheduled" or info.planned_start is None:
        return []
    start = info.planned_start
    now = event.occurred_at
    if start <= now:
        return []
    payload: dict[str, Any] = {"planned_start": start.isoformat()}
    if info.planned_end is not None:
        payload["planned_end"] = info.planned_end.isoformat()
    days = sorted(policy.planned_notice_days, reverse=True)
    future = [d for d in days if start - timedelta(days=d) > now]
    past = [d for d in days if d not in future]
    specs: list[JobSpec] = []
    for customer in sorted(state.planned_customers.get(info.id, ())):
        noticed = state.family_jobs(customer, frozenset({info.id}), ("planned_notice",))
        if any(j.spec.payload.get("planned_start") == payload["planned_start"] for j in noticed):
            continue
        if past:
            d = past[-1]  # the nearest notice that is already late
            specs.append(_spec(info, customer, "planned_notice", event.seq * 100 + d, now, payload))
        for d in future:
            due = start - timedelta(days=d)
            rev = event.seq * 100 + d
            specs.append(_spec(info, customer, "planned_notice", rev, due, payload))
    return specs


def _notice_due(interruption: Interruption, policy: NotifyPolicy) -> datetime:
    return interruption.started_at + policy.momentary_threshold


def _spec(
    info: IncidentInfo,
    customer_id: str,
    stage: Stage,
    revision: int,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
) -> JobSpec:
    return JobSpec(info.id, customer_id, stage, revision, due_at, payload or {})
