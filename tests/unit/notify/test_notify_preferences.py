"""Delivery preferences: channel order, language, quiet hours, throttle, opt-in/out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.common.topology.model import Contacts, Customer
from services.notify.domain.preferences import (
    CustomerPrefs,
    choose_channel,
    choose_language,
    plan_delivery,
    quiet_hours_end,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(hour: int, minute: int = 0, day: int = 14) -> datetime:
    return datetime(2026, 7, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def prefs(**kw: object) -> CustomerPrefs:
    base: dict[str, object] = {"customer_id": "C1", "contacts": {"sms": "+8613800000001"}}
    base.update(kw)
    return CustomerPrefs(**base)  # type: ignore[arg-type]


class TestChannelAndLanguage:
    def test_first_reachable_channel_in_order_sms_wechat_email_webhook(self) -> None:
        contacts = {"email": "a@example.com", "wechat": "openid-1", "webhook": "https://x"}
        assert choose_channel(contacts) == ("wechat", "openid-1")
        assert choose_channel(contacts, enabled={"email", "webhook"}) == ("email", "a@example.com")
        assert choose_channel({"sms": None, "email": ""}) is None

    @pytest.mark.parametrize(
        ("given", "expected"),
        [("en", "en"), ("en-GB", "en"), ("zh-CN", "zh-CN"), ("fr", "zh-CN"), (None, "zh-CN")],
    )
    def test_language_is_zh_cn_or_en(self, given: str | None, expected: str) -> None:
        assert choose_language(given) == expected

    def test_prefs_from_topology_customer(self) -> None:
        customer = Customer(
            "C7", "M7", "T1", "residential", critical=True, language="en",
            contacts=Contacts(email="c7@example.com"),
        )  # fmt: skip
        p = CustomerPrefs.from_customer(customer, opt_in={"crew_on_site"})
        assert (p.critical, p.language, p.quiet_hours) == (True, "en", None)
        assert choose_channel(p.contacts) == ("email", "c7@example.com")

    def test_customer_without_quiet_hours_is_told_at_night(self) -> None:
        # The demo's 141 "never told" customers: no quiet hours in the topology, a fuse
        # out from 23:12 to 02:12; a notify-wide 22:00-07:00 default deferred their notice
        # to 07:00, when they were back, so they were never told while in the dark.
        customer = Customer("C8", "M8", "T1", "residential", quiet_hours=None,
                            contacts=Contacts(sms="+8613800000008"))  # fmt: skip
        p = CustomerPrefs.from_customer(customer)
        assert p.quiet_hours is None
        plan = plan_delivery("outage_detected", p, local(23, 17), last_sent_at=None, tz=SHANGHAI)
        assert (plan.action, plan.at) == ("send", local(23, 17))

    def test_customer_quiet_hours_kept_and_site_default_only_when_asked(self) -> None:
        own = Customer("C9", "M9", "T1", "residential", quiet_hours="21:00-08:00")
        assert CustomerPrefs.from_customer(own).quiet_hours == "21:00-08:00"
        none = Customer("C9", "M9", "T1", "residential", quiet_hours=None)
        site = CustomerPrefs.from_customer(none, default_quiet_hours="22:00-07:00")
        assert site.quiet_hours == "22:00-07:00"


class TestQuietHours:
    def test_window_wrapping_midnight(self) -> None:
        assert quiet_hours_end(local(23), "22:00-07:00", SHANGHAI) == local(7, day=15)
        assert quiet_hours_end(local(3), "22:00-07:00", SHANGHAI) == local(7)
        assert quiet_hours_end(local(7), "22:00-07:00", SHANGHAI) is None
        assert quiet_hours_end(local(21, 59), "22:00-07:00", SHANGHAI) is None

    def test_window_within_a_day(self) -> None:
        assert quiet_hours_end(local(13), "12:00-14:00", SHANGHAI) == local(14)
        assert quiet_hours_end(local(15), "12:00-14:00", SHANGHAI) is None

    def test_outage_notice_deferred_to_end_of_quiet_hours(self) -> None:
        plan = plan_delivery(
            "outage_detected", prefs(), local(23, 30), last_sent_at=None, tz=SHANGHAI
        )
        assert (plan.action, plan.reason, plan.at) == ("defer", "quiet_hours", local(7, day=15))

    def test_restored_is_sent_in_quiet_hours(self) -> None:
        plan = plan_delivery("restored", prefs(), local(2), last_sent_at=None, tz=SHANGHAI)
        assert (plan.action, plan.channel, plan.address) == ("send", "sms", "+8613800000001")

    def test_critical_customer_bypasses_quiet_hours(self) -> None:
        plan = plan_delivery(
            "outage_detected", prefs(critical=True), local(2), last_sent_at=None, tz=SHANGHAI
        )
        assert plan.action == "send"

    def test_no_quiet_hours_when_customer_has_none(self) -> None:
        plan = plan_delivery(
            "etr_set", prefs(quiet_hours=None), local(2), last_sent_at=None, tz=SHANGHAI
        )
        assert plan.action == "send"


class TestThrottle:
    def test_second_message_within_30_minutes_is_deferred(self) -> None:
        now = local(10)
        plan = plan_delivery(
            "etr_set", prefs(), now, last_sent_at=now - timedelta(minutes=10), tz=SHANGHAI
        )
        assert (plan.action, plan.reason, plan.at) == (
            "defer",
            "throttle",
            now + timedelta(minutes=20),
        )

    def test_restored_is_not_throttled(self) -> None:
        now = local(10)
        plan = plan_delivery(
            "restored", prefs(), now, last_sent_at=now - timedelta(minutes=1), tz=SHANGHAI
        )
        assert plan.action == "send"

    def test_throttle_into_quiet_hours_defers_to_morning(self) -> None:
        now = local(21, 50)
        plan = plan_delivery(
            "etr_changed", prefs(), now, last_sent_at=now - timedelta(minutes=5), tz=SHANGHAI
        )
        assert (plan.action, plan.at) == ("defer", local(7, day=15))

    def test_after_30_minutes_sends(self) -> None:
        now = local(10)
        plan = plan_delivery(
            "etr_set", prefs(), now, last_sent_at=now - timedelta(minutes=30), tz=SHANGHAI
        )
        assert plan.action == "send"


class TestOptInOut:
    def test_opted_out_customer_gets_nothing_not_even_restored(self) -> None:
        plan = plan_delivery(
            "restored", prefs(opted_out=True), local(10), last_sent_at=None, tz=SHANGHAI
        )
        assert (plan.action, plan.reason) == ("skip", "opted_out")

    def test_crew_on_site_only_when_opted_in(self) -> None:
        no = plan_delivery("crew_on_site", prefs(), local(10), last_sent_at=None, tz=SHANGHAI)
        yes = plan_delivery(
            "crew_on_site", prefs(opt_in=frozenset({"crew_on_site"})), local(10),
            last_sent_at=None, tz=SHANGHAI,
        )  # fmt: skip
        assert (no.action, no.reason, yes.action) == ("skip", "not_opted_in", "send")

    def test_unreachable_customer_is_skipped(self) -> None:
        plan = plan_delivery(
            "restored", prefs(contacts={}), local(10), last_sent_at=None, tz=SHANGHAI
        )
        assert (plan.action, plan.reason) == ("skip", "unreachable")
