"""Builds scenario lines (DESIGN section 14) the way grid equipment and customers send them.

Deterministic for a given ``random.Random``; event ids are sequential per source.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from itertools import count
from typing import Any

METER_TOPIC = "grid.meter-events.v1"
DEVICE_TOPIC = "grid.device-events.v1"
REPORT_TOPIC = "grid.customer-reports.v1"
_BAND_LOW = {220: 198.0, 380: 353.4}


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


class ScenarioBuilder:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lines: list[tuple[datetime, int, dict[str, Any]]] = []
        self._order = count()
        self._ids = {"m": count(1), "d": count(1), "r": count(1)}

    def lines(self) -> list[dict[str, Any]]:
        """All lines in delivery order (by ``at``, ties in creation order)."""
        return [line for _, _, line in sorted(self._lines, key=lambda x: (x[0], x[1]))]

    def _emit(self, topic: str, key: str, value: dict[str, Any], at: datetime) -> None:
        self._lines.append((at, next(self._order),
                            {"topic": topic, "key": key, "value": value, "at": _iso(at)}))

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids[prefix]):07d}"

    def _meter(self, meter: str, kind: str, occurred: datetime, *, late: bool = False,
               dup: bool = False, **fields: Any) -> None:
        value = {"event_id": self._next_id("m"), "meter_id": meter, "type": kind,
                 "occurred_at": _iso(occurred), **fields}
        at = occurred + (timedelta(minutes=self._rng.uniform(15, 40)) if late
                         else timedelta(seconds=self._rng.uniform(1, 20)))
        self._emit(METER_TOPIC, meter, value, at)
        if dup:  # AMI retransmission: the same event again a little later
            self._emit(METER_TOPIC, meter, value, at + timedelta(seconds=self._rng.uniform(5, 90)))

    def meter_outage(self, customers: list[dict[str, Any]], start: datetime, end: datetime, *,
                     report_off: float = 0.8, report_on: float = 0.85, late_share: float = 0.04,
                     dup_share: float = 0.03) -> None:
        """Last gasps at ``start`` and power restores at ``end``, each lossy, some late or
        duplicated."""
        for c in customers:
            rng = self._rng
            if rng.random() < report_off:
                off = start + timedelta(seconds=rng.uniform(0, 8))
                self._meter(c["meter"], "last_gasp", off, late=rng.random() < late_share,
                            dup=rng.random() < dup_share)
            if rng.random() < report_on:
                on = end + timedelta(seconds=rng.uniform(0, 30))
                self._meter(c["meter"], "power_restore", on, late=rng.random() < late_share,
                            dup=rng.random() < dup_share)

    def device(self, device: str, at: datetime, state: str, *, lockout: bool = False) -> None:
        value = {"event_id": self._next_id("d"), "device_id": device, "occurred_at": _iso(at),
                 "state": state, "lockout": lockout}
        self._emit(DEVICE_TOPIC, device, value, at + timedelta(seconds=1))

    def call(self, customer: dict[str, Any], at: datetime, kind: str, **extra: Any) -> None:
        value = {"event_id": self._next_id("r"), "customer_id": customer["id"],
                 "occurred_at": _iso(at), "channel": self._rng.choice(("phone", "app", "wechat")),
                 "kind": kind, **extra}
        self._emit(REPORT_TOPIC, customer["id"], value, at + timedelta(seconds=2))

    def calls(self, customers: list[dict[str, Any]], start: datetime, *, share: float,
              kind: str = "no_power") -> None:
        """A share of ``customers`` call within 5–40 minutes of ``start``."""
        for c in customers:
            if self._rng.random() < share:
                self.call(c, start + timedelta(minutes=self._rng.uniform(5, 40)), kind)

    def voltage_series(self, customers: list[dict[str, Any]], start: datetime, end: datetime, *,
                       interval: timedelta, nominal: dict[str, float],
                       low_between: tuple[datetime, datetime] | None = None) -> None:
        """Interval voltage summaries; inside ``low_between`` the readings sit below band."""
        step = int(interval.total_seconds())
        for c in customers:
            v_nom = nominal.get(c["transformer"], 220)
            t = start + interval
            while t <= end:
                low = low_between is not None and low_between[0] < t <= low_between[1]
                if low:
                    v_avg = _BAND_LOW.get(int(v_nom), v_nom * 0.9) - self._rng.uniform(3, 9)
                else:
                    v_avg = v_nom * self._rng.uniform(0.975, 1.03)
                self._meter(c["meter"], "voltage", t, interval_s=step, v_avg=round(v_avg, 1),
                            v_min=round(v_avg - self._rng.uniform(1, 4), 1),
                            v_max=round(v_avg + self._rng.uniform(1, 4), 1))
                t += interval

    def power_quality(self, customers: list[dict[str, Any]], start: datetime,
                      end: datetime) -> None:
        span = (end - start).total_seconds()
        for c in customers:
            at = start + timedelta(seconds=self._rng.uniform(0, span))
            if self._rng.random() < 0.75:
                self._meter(c["meter"], "sag", at, magnitude_v=round(self._rng.uniform(60, 190), 1),
                            duration_ms=self._rng.choice((40, 120, 480, 1500, 4000)))
            else:
                self._meter(c["meter"], "swell", at,
                            magnitude_v=round(self._rng.uniform(245, 300), 1),
                            duration_ms=self._rng.choice((40, 200, 900)))

    def surveys(self, customers: list[dict[str, Any]], at: datetime, *, hours: timedelta,
                share: float = 0.08) -> None:
        """Post-restoration surveys; longer outages score worse."""
        h = hours.total_seconds() / 3600
        for c in customers:
            if self._rng.random() < share:
                base = 5.0 - 1.6 * math.log1p(h) + self._rng.gauss(0, 0.6)
                score = max(1, min(5, round(base)))
                self.call(c, at + timedelta(minutes=self._rng.uniform(0, 120)), "survey",
                          score=score)

    def bad_messages(self, topology: dict[str, Any], at: datetime) -> dict[str, int]:
        """A few messages ingest must dead-letter; returns the expected count per code."""
        meter = topology["customers"][0]["meter"]
        raw_lines: list[tuple[str, str, str, str]] = [
            ("invalid_json", METER_TOPIC, meter, '{"event_id": "bad-1", "meter_id": '),
            ("invalid_json", REPORT_TOPIC, "C999999", "not json at all"),
        ]
        for _code, topic, key, raw in raw_lines:
            self._lines.append((at, next(self._order),
                                {"topic": topic, "key": key, "raw": raw, "at": _iso(at)}))
        self._emit(METER_TOPIC, meter, {"event_id": "bad-2", "meter_id": meter,
                                        "type": "last_gasp"}, at)  # schema: no occurred_at
        self._emit(METER_TOPIC, meter, {"event_id": "bad-3", "meter_id": meter, "type": "voltage",
                                        "occurred_at": _iso(at), "interval_s": 900,
                                        "v_avg": "high", "v_min": 1.0, "v_max": 2.0}, at)
        self._emit(METER_TOPIC, "M999999", {"event_id": "bad-4", "meter_id": "M999999",
                                            "type": "last_gasp", "occurred_at": _iso(at)}, at)
        self._emit(DEVICE_TOPIC, "F99-R9", {"event_id": "bad-5", "device_id": "F99-R9",
                                            "occurred_at": _iso(at), "state": "open",
                                            "lockout": True}, at)
        self._emit(REPORT_TOPIC, "C999999", {"event_id": "bad-6", "customer_id": "C999999",
                                             "occurred_at": _iso(at), "channel": "phone",
                                             "kind": "no_power"}, at)
        old = at - timedelta(days=9)
        self._emit(METER_TOPIC, meter, {"event_id": "bad-7", "meter_id": meter,
                                        "type": "power_restore", "occurred_at": _iso(old)}, at)
        customer = topology["customers"][0]["id"]
        self._emit(REPORT_TOPIC, customer, {"event_id": "bad-8", "customer_id": customer,
                                            "occurred_at": _iso(at), "channel": "web",
                                            "kind": "flicker", "text": "闪" * 30_000}, at)
        return {"invalid_json": 2, "schema": 2, "unknown_meter": 1, "unknown_device": 1,
                "unknown_customer": 1, "timestamp_out_of_range": 1, "too_large": 1}
