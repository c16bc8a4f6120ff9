"""The sender's decisions for a round of claimed jobs: cancel, defer, or send on a channel.

Pure over what :class:`SendContext` holds (loaded by the sender) plus the topology and the
token buckets; no database access. Also sends critical customers' escalations to the
operators' webhook when one is configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.common.topology.model import Customer, Topology
from services.notify.channels.base import Channel, OutboundMessage
from services.notify.domain.decisions import NotifyPolicy, check_due
from services.notify.domain.job_state import JobStatus
from services.notify.domain.preferences import CustomerPrefs, plan_delivery
from services.notify.domain.token_bucket import RateSlots, TokenBucket
from services.notify.indexed_state import IndexedNotifyState
from services.notify.outcomes import Outcome, Sending, cancelled, release
from services.notify.render import context_for, render
from services.notify.repository import job_from_row


@dataclass(slots=True)
class SendContext:
    state: IndexedNotifyState = field(default_factory=IndexedNotifyState)
    last_sent: dict[str, datetime] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    escalations: set[tuple[str, str]] = field(default_factory=set)  # still pending


@dataclass(frozen=True, slots=True)
class Dispatch:
    sending: Sending
    channel: Channel
    message: OutboundMessage


@dataclass(frozen=True, slots=True)
class Escalation:
    incident_id: str
    customer: Customer
    cancel_reason: str | None = None  # set: the outage turned out not worth escalating


@dataclass(slots=True)
class Plans:
    immediate: list[Outcome] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)


class Planner:
    def __init__(
        self,
        topology: Callable[[], Topology],
        channels: Mapping[str, Channel],
        buckets: Mapping[str, TokenBucket],
        policy: NotifyPolicy,
        tz: ZoneInfo,
        throttle: timedelta,
        crew_on_site_opt_in_default: bool,
        round_s: float,
    ) -> None:
        self._topology = topology
        self._channels = channels
        self._buckets = buckets
        self._policy = policy
        self._tz = tz
        self._throttle = throttle
        self._slots = RateSlots(round_s)
        self._opt_in = frozenset({"crew_on_site"}) if crew_on_site_opt_in_default else frozenset()

    def plan(
        self,
        rows: Sequence[Any],
        ctx: SendContext,
        claimed_at: datetime,
        prepaid: dict[str, float] | None = None,
    ) -> Plans:
        """Decide every claimed job of a round (``claimed_at`` = the round's now).
        ``prepaid``: tokens per channel already taken from the buckets for this round,
        spent first (what is left is the caller's to give back)."""
        paid = prepaid if prepaid is not None else {}
        now = claimed_at
        topology = self._topology()
        plans = Plans()
        ctx.state.freeze_families()  # the round's state is read-only from here
        for row in rows:
            job = job_from_row(row, JobStatus.SENDING)
            spec = job.spec
            customer = topology.customers.get(spec.customer_id)
            verdict = check_due(spec, ctx.state, self._policy, now)
            key = (spec.incident_id, spec.customer_id)
            if customer is not None and customer.critical and key in ctx.escalations:
                ctx.escalations.discard(key)
                reason = None if verdict.send else verdict.reason
                plans.escalations.append(Escalation(spec.incident_id, customer, reason))
            if not verdict.send:
                plans.immediate.append(cancelled(row, claimed_at, verdict.reason or "cancelled"))
                continue
            if customer is None:
                plans.immediate.append(cancelled(row, claimed_at, "unknown_customer"))
                continue
            prefs = CustomerPrefs.from_customer(
                customer, opted_out=spec.customer_id in ctx.opted_out, opt_in=self._opt_in
            )
            plan = plan_delivery(
                spec.stage, prefs, now, last_sent_at=ctx.last_sent.get(spec.customer_id),
                tz=self._tz, enabled_channels=tuple(self._channels), throttle=self._throttle,
            )  # fmt: skip
            if plan.action == "skip":
                plans.immediate.append(cancelled(row, claimed_at, plan.reason or "skipped"))
                continue
            if plan.action == "defer":
                assert plan.at is not None
                plans.immediate.append(release(row, claimed_at, plan.at, plan.reason or "defer"))
                continue
            assert plan.channel is not None
            assert plan.address is not None
            bucket = self._buckets.get(plan.channel)
            if paid.get(plan.channel, 0.0) >= 1:
                paid[plan.channel] -= 1
            elif bucket is not None and not bucket.try_acquire():
                at = self._slots.next_slot(plan.channel, bucket)
                plans.immediate.append(release(row, claimed_at, at, "rate_limited"))
                continue
            ctx.last_sent[spec.customer_id] = now  # the throttle also holds inside a round
            info = ctx.state.incidents.get(spec.incident_id)
            context = context_for(spec, info, area_name=_place(topology, customer))
            subject, body = render(
                spec.stage, plan.language, context, channel=plan.channel, tz=self._tz
            )
            key_text = f"{spec.incident_id}:{spec.customer_id}:{spec.stage}:{spec.revision}"
            message = OutboundMessage(
                plan.channel, plan.address, subject, body, spec.customer_id, spec.incident_id,
                spec.stage, plan.language, key_text,
            )  # fmt: skip
            sending = Sending(
                int(row.id), job, claimed_at, plan.channel, plan.address, plan.language, body
            )
            plans.dispatches.append(Dispatch(sending, self._channels[plan.channel], message))
        return plans


def _place(topology: Topology, customer: Customer) -> str | None:
    """The customer's feeder name: the place a message names."""
    try:
        transformer = topology.transformers[customer.transformer]
        return topology.feeders[topology.devices[transformer.device].feeder].name
    except KeyError:
        return None


def escalation_message(e: Escalation, to: str, now: datetime) -> OutboundMessage:
    """The operators' webhook message for a critical customer out of power."""
    c = e.customer
    body = (
        f"Critical customer {c.id} ({c.class_}) is out of power in incident {e.incident_id} "
        f"since before {now.isoformat()}; contact: {c.contacts.sms or c.contacts.email or '-'}"
    )
    return OutboundMessage(
        "webhook", to, f"Critical customer out: {c.id}", body, c.id, e.incident_id,
        "outage_detected", "en", f"escalation:{e.incident_id}:{c.id}",
    )  # fmt: skip
