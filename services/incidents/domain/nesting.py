"""The nested-outage check (DESIGN section 5 rule 6), run ``nested_check_s`` after re-energising.

Customers of a restored incident whose meters are still OFF (no power_on since) — or who
called ``still_out`` — are rolled up again below the old outage point: where the rule
predicts a point (supported by at least two customers), they and everyone else below it who
has not reported power form a nested incident whose interruptions continue from their
original start; a customer who reported still_out forms a single-customer nested incident;
any other lone OFF meter is presumed restored (its restore message was lost).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from . import lifecycle
from .model import Incident
from .rollup import Point

if TYPE_CHECKING:
    from .correlation import Correlator


def nested_check(
    corr: Correlator, inc: Incident, at: datetime, only: Iterable[str] | None = None
) -> list[Incident]:
    """Run the check on a restored incident (for ``only`` these customers); returns the nests."""
    from .correlation import point_of

    s = corr.s
    point = point_of(inc)
    candidates: list[str] = []
    for c in list(only) if only is not None else list(inc.interruptions):
        intr = inc.interruptions.get(c)
        st = s.customers.get(c)
        if s.holder.get(c) != inc.id or intr is None or intr.end is None or st is None:
            continue
        assert st.since is not None or st.status == "UNKNOWN"
        if st.still_out or (st.status == "OFF" and st.since is not None and st.since <= intr.end):
            candidates.append(c)
    groups: dict[Point, list[str]] = {}
    singles: list[str] = []
    for c in candidates:
        q = corr.off.topmost(c, below=point)
        if q is not None and corr.off.support(q) >= 2:
            groups.setdefault(q, []).append(c)
        elif s.customers[c].still_out:
            singles.append(c)
        else:
            _presume_restored(corr, c, inc)
    nests: list[Incident] = []
    for q in groups:
        if corr._covering(q) is not None:
            continue  # a newer open incident already holds that point
        members = [c for c in corr.net.customers_below(q) if _still_dark(corr, inc, c)]
        nests.append(_nest(corr, inc, q, members, at, "OFF evidence still rolls up"))
    for c in singles:
        if _still_dark(corr, inc, c):
            nests.append(_nest(corr, inc, ("customer", c), [c], at, "customer reports still out"))
    return nests


def _still_dark(corr: Correlator, inc: Incident, c: str) -> bool:
    intr = inc.interruptions.get(c)
    st = corr.s.customers.get(c)
    if corr.s.holder.get(c) != inc.id or intr is None or intr.end is None:
        return False
    return st is None or st.status != "ON"


def _presume_restored(corr: Correlator, c: str, inc: Incident) -> None:
    """A lone OFF meter after re-energising: its restore message was lost."""
    st = corr._state(c)
    intr = inc.interruptions[c]
    if st.status == "OFF":
        corr.off.unmark(c)
    st.status, st.since, st.presumed = "ON", intr.end, True
    corr.on.mark(c)  # flips are ignored: nobody else's incident can hold this customer


def _nest(
    corr: Correlator, parent: Incident, q: Point, members: list[str], at: datetime, why: str
) -> Incident:
    kind, pid = q
    child_id = f"{parent.id}/{pid}"
    corr.s.issued_ids.add(child_id)
    child = lifecycle.split(
        parent, members, child_id, at, corr.actor, why,
        device_id=pid if kind == "device" else None,
        transformer_id=pid if kind == "transformer" else None,
        customer_id=pid if kind == "customer" else None,
        area=corr.net.area_of(q),
    )  # fmt: skip
    corr._touch(parent)
    corr._hold(child, q)
    for c in members:
        st = corr._state(c)
        st.last_start = st.last_end = None  # the interruption is open again
        corr.s.dwell_due.pop(c, None)
    return child
