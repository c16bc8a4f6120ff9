"""Per-customer delivery preferences: channel, language, quiet hours, throttle, opt-out.

:func:`plan_delivery` is asked when a job comes due (after
:func:`services.notify.domain.decisions.check_due`) and answers send now, defer to a
later time (quiet hours, throttle) or skip (opted out, not opted in, unreachable).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.common.topology.model import CHANNELS, Customer
from services.notify.domain.model import Stage

Language = Literal["zh-CN", "en"]
DEFAULT_LANGUAGE: Language = "zh-CN"
DEFAULT_QUIET_HOURS = "22:00-07:00"
THROTTLE = timedelta(minutes=30)
# Stages a customer must ask for; every other stage is sent unless they opted out.
OPT_IN_STAGES: frozenset[str] = frozenset({"crew_on_site"})
# Sent whatever the hour and however recent the last message: people wait up for it.
URGENT_STAGES: frozenset[str] = frozenset({"restored"})


@dataclass(frozen=True, slots=True)
class CustomerPrefs:
    customer_id: str
    contacts: Mapping[str, str | None] = field(default_factory=dict)
    language: str = DEFAULT_LANGUAGE
    quiet_hours: str | None = DEFAULT_QUIET_HOURS  # None: no quiet hours
    critical: bool = False
    opted_out: bool = False
    opt_in: frozenset[str] = frozenset()

    @classmethod
    def from_customer(
        cls,
        customer: Customer,
        *,
        opted_out: bool = False,
        opt_in: Collection[str] = (),
        default_quiet_hours: str | None = None,
    ) -> CustomerPrefs:
        """Preferences from the topology's customer plus notify's own opt-in/out records.

        A customer whose ``quiet_hours`` is null has none: a notify-wide window would defer
        their outage notice past a night-time outage, so they would never be told while
        it lasted. ``default_quiet_hours`` applies only when a caller asks for one.
        """
        c = customer.contacts
        return cls(
            customer_id=customer.id,
            contacts={"sms": c.sms, "wechat": c.wechat, "email": c.email, "webhook": c.webhook},
            language=customer.language,
            quiet_hours=customer.quiet_hours or default_quiet_hours,
            critical=customer.critical,
            opted_out=opted_out,
            opt_in=frozenset(opt_in),
        )


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """``action`` send (now, on ``channel`` to ``address``), defer (to ``at``) or skip."""

    action: Literal["send", "defer", "skip"]
    reason: str | None = None
    at: datetime | None = None
    channel: str | None = None
    address: str | None = None
    language: Language = DEFAULT_LANGUAGE


def choose_channel(
    contacts: Mapping[str, str | None], enabled: Collection[str] = CHANNELS
) -> tuple[str, str] | None:
    """(channel, address): the first contact in the order sms, wechat, email, webhook
    whose channel is enabled in this deployment; ``None`` when unreachable."""
    for channel in CHANNELS:
        address = contacts.get(channel)
        if address and channel in enabled:
            return channel, address
    return None


def choose_language(language: str | None) -> Language:
    """zh-CN or en; anything else (``en-GB``, ``zh``, unknown) maps to the nearest or zh-CN."""
    if language and language.lower().split("-")[0] == "en":
        return "en"
    return DEFAULT_LANGUAGE


def parse_quiet_hours(spec: str) -> tuple[time, time]:
    """``"22:00-07:00"`` → (start, end) local times; the window may wrap past midnight."""
    try:
        start_s, end_s = spec.split("-")
        return time.fromisoformat(start_s.strip()), time.fromisoformat(end_s.strip())
    except ValueError as exc:
        raise ValueError(f"quiet hours must look like 22:00-07:00, got {spec!r}") from exc


def quiet_hours_end(at: datetime, spec: str | None, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet window containing ``at`` (UTC), or ``None`` when not quiet."""
    if not spec:
        return None
    start, end = parse_quiet_hours(spec)
    if start == end:
        return None
    local = at.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_local = datetime.combine(local.date(), end, tzinfo=tz)
    if end_local <= local:
        end_local = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=tz)
    return end_local.astimezone(at.tzinfo)


def plan_delivery(
    stage: Stage,
    prefs: CustomerPrefs,
    now: datetime,
    *,
    last_sent_at: datetime | None,
    tz: ZoneInfo,
    enabled_channels: Collection[str] = CHANNELS,
    throttle: timedelta = THROTTLE,
) -> DeliveryPlan:
    """Send, defer or skip a due message for this customer.

    ``last_sent_at`` is the customer's latest sent message of any stage. Quiet hours defer
    every stage but ``restored``, and nothing for critical customers; the throttle (one
    message per ``throttle``) defers every stage but ``restored``.
    """
    if prefs.opted_out:
        return DeliveryPlan("skip", "opted_out")
    if stage in OPT_IN_STAGES and stage not in prefs.opt_in:
        return DeliveryPlan("skip", "not_opted_in")
    reachable = choose_channel(prefs.contacts, enabled_channels)
    if reachable is None:
        return DeliveryPlan("skip", "unreachable")
    channel, address = reachable
    language = choose_language(prefs.language)
    urgent = stage in URGENT_STAGES
    at, reason = now, None
    for _ in range(4):  # throttle and quiet hours may push each other; settles in two rounds
        moved = False
        if not urgent and last_sent_at is not None and at < last_sent_at + throttle:
            at, reason, moved = last_sent_at + throttle, "throttle", True
        quiet_end = None if urgent or prefs.critical else quiet_hours_end(at, prefs.quiet_hours, tz)
        if quiet_end is not None:
            at, reason, moved = quiet_end, "quiet_hours", True
        if not moved:
            break
    if at > now:
        return DeliveryPlan("defer", reason, at, channel, address, language)
    return DeliveryPlan("send", None, now, channel, address, language)
