"""Voltage quality: standard bands, compliance minutes and IEEE 1159 disturbance classes.

DESIGN section 5 point 7 and section 11 (voltage report). The incident rule that uses the
bands lives in :mod:`voltage_monitor`.

Bands (limits inclusive, as a fraction of the nominal voltage):

* ``gbt12325`` (GB/T 12325-2008): 220 V single-phase −10 % / +7 %; three-phase up to 20 kV
  (380 V, 10 kV) ±7 %; 35 kV and above, whose rule is "absolute deviations sum to at most
  10 %", taken as ±5 %.
* ``ansi_c84_1`` (ANSI C84.1 Range A, service voltage): up to 600 V ±5 %; above 600 V
  −2.5 % / +5 %.
* ``en50160`` (EN 50160, LV and MV): ±10 %.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

ProfileName = Literal["gbt12325", "ansi_c84_1", "en50160"]
PROFILES: tuple[ProfileName, ...] = ("gbt12325", "ansi_c84_1", "en50160")
BandPosition = Literal["low", "normal", "high"]


@dataclass(frozen=True, slots=True)
class VoltageBand:
    """The allowed range of ``v_avg`` for one nominal voltage (limits inclusive)."""

    nominal_v: float
    low_v: float
    high_v: float

    def position(self, v: float) -> BandPosition:
        """Whether ``v`` is below, inside or above the band."""
        if v < self.low_v:
            return "low"
        if v > self.high_v:
            return "high"
        return "normal"

    def contains(self, v: float) -> bool:
        """True when ``v`` is inside the band (limits included)."""
        return self.low_v <= v <= self.high_v


def band_for(profile: ProfileName, nominal_v: float, phases: int = 1) -> VoltageBand:
    """The band of ``profile`` for a transformer's nominal voltage and phase count."""
    if nominal_v <= 0:
        raise ValueError(f"nominal voltage must be positive, not {nominal_v}")
    if phases not in (1, 3):
        raise ValueError(f"phases must be 1 or 3, not {phases}")
    low, high = _permille_limits(profile, nominal_v, phases)
    # Per-mille integers and one division keep the limits exact where the decimal is
    # (220·1070/1000 is the double nearest 235.4, the same as a parsed reading "235.4").
    return VoltageBand(nominal_v, nominal_v * low / 1000, nominal_v * high / 1000)


def _permille_limits(profile: ProfileName, nominal_v: float, phases: int) -> tuple[int, int]:
    if profile == "gbt12325":
        if phases == 1 and nominal_v <= 1000:
            return 900, 1070
        return (930, 1070) if nominal_v <= 20_000 else (950, 1050)
    if profile == "ansi_c84_1":
        return (950, 1050) if nominal_v <= 600 else (975, 1050)
    if profile == "en50160":
        return 900, 1100
    raise ValueError(f"unknown voltage profile {profile!r}")


@dataclass(frozen=True, slots=True)
class VoltageReading:
    """An interval summary from one meter; it covers the ``interval_s`` before ``occurred_at``."""

    event_id: str
    meter_id: str
    occurred_at: datetime
    v_avg: float
    interval_s: int = 900


@dataclass(frozen=True, slots=True)
class ComplianceMinutes:
    """Minutes monitored and minutes out of band for one monitoring point (or a sum)."""

    minutes_monitored: float
    minutes_out_of_band: float

    @property
    def qualified_rate(self) -> float | None:
        """电压合格率: (1 − out / monitored)·100, or None when nothing was monitored."""
        if self.minutes_monitored <= 0:
            return None
        return (1.0 - self.minutes_out_of_band / self.minutes_monitored) * 100.0

    def __add__(self, other: ComplianceMinutes) -> ComplianceMinutes:
        return ComplianceMinutes(
            self.minutes_monitored + other.minutes_monitored,
            self.minutes_out_of_band + other.minutes_out_of_band,
        )


def compliance_minutes(
    readings: Iterable[VoltageReading],
    band: VoltageBand,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ComplianceMinutes:
    """Minutes monitored and out of band from one meter's readings, clipped to [start, end).

    Duplicates (same ``event_id``) count once; where two readings' intervals overlap the
    overlap counts once, for the earlier reading.
    """
    unique = {r.event_id: r for r in readings}
    monitored = out = 0.0
    covered_until: datetime | None = None
    for r in sorted(unique.values(), key=lambda r: (r.occurred_at, r.event_id)):
        lo = r.occurred_at - timedelta(seconds=r.interval_s)
        hi = r.occurred_at
        if covered_until is not None:
            lo = max(lo, covered_until)
        if start is not None:
            lo = max(lo, start)
        if end is not None:
            hi = min(hi, end)
        covered_until = r.occurred_at  # readings are sorted by occurred_at
        if hi <= lo:
            continue
        minutes = (hi - lo).total_seconds() / 60.0
        monitored += minutes
        if not band.contains(r.v_avg):
            out += minutes
    return ComplianceMinutes(monitored, out)


def classify_disturbance(
    magnitude_pu: float, duration_ms: float, frequency_hz: float = 50.0
) -> str | None:
    """The IEEE 1159 class of a sag, swell or interruption, e.g. ``"instantaneous_sag"``.

    Magnitude: interruption < 0.1 pu ≤ sag < 0.9 pu; swell > 1.1 pu up to 1.8 pu. Duration
    (upper limits inclusive): instantaneous 0.5–30 cycles (10–600 ms at 50 Hz), momentary
    to 3 s, temporary to 1 min (interruptions: momentary 0.5 cycles–3 s, temporary to 1 min);
    longer is ``sustained_interruption``, ``undervoltage`` or ``overvoltage``. None for
    anything shorter than half a cycle, between 0.9 and 1.1 pu, or above 1.8 pu.
    """
    half_cycle_ms = 500.0 / frequency_hz
    thirty_cycles_ms = 30_000.0 / frequency_hz
    if duration_ms < half_cycle_ms or magnitude_pu < 0:
        return None
    if duration_ms > 60_000:
        if magnitude_pu < 0.1:
            return "sustained_interruption"
        if magnitude_pu < 0.9:
            return "undervoltage"
        return "overvoltage" if magnitude_pu > 1.1 else None
    if magnitude_pu < 0.1:
        return "momentary_interruption" if duration_ms <= 3_000 else "temporary_interruption"
    if magnitude_pu < 0.9:
        kind = "sag"
    elif 1.1 < magnitude_pu <= 1.8:
        kind = "swell"
    else:
        return None
    if duration_ms <= thirty_cycles_ms:
        return f"instantaneous_{kind}"
    if duration_ms <= 3_000:
        return f"momentary_{kind}"
    return f"temporary_{kind}"


def classify_disturbance_v(
    magnitude_v: float, nominal_v: float, duration_ms: float, frequency_hz: float = 50.0
) -> str | None:
    """:func:`classify_disturbance` for a magnitude in volts against the nominal voltage."""
    if nominal_v <= 0:
        raise ValueError(f"nominal voltage must be positive, not {nominal_v}")
    # One correctly rounded division: 198/220 is exactly the double 0.9.
    return classify_disturbance(magnitude_v / nominal_v, duration_ms, frequency_hz)
