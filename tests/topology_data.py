"""Deterministic topology dicts (JSON form of DESIGN section 2) of any size, for tests.

Importable from any test module (pytest puts ``tests/`` on ``sys.path`` for the root
conftest). Each feeder: breaker -> 2 reclosers -> 4 fuses each; ``per_transformer``
customers under each transformer, transformers spread over the fuses.
"""

from __future__ import annotations

from typing import Any

CUSTOMERS_PER_FEEDER = 2000


def synthetic_topology(customers: int, per_transformer: int = 10) -> dict[str, Any]:
    """A valid topology with ``customers`` customers."""
    feeders_n = max(1, -(-customers // CUSTOMERS_PER_FEEDER))
    feeders: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    fuses: list[str] = []
    areas = ("urban", "rural", "remote")
    for f in range(1, feeders_n + 1):
        fid = f"F{f:03d}"
        feeders.append(
            {"id": fid, "name": f"Feeder {f}", "substation": f"S{f % 7}", "area": areas[f % 3]}
        )
        devices.append({"id": f"{fid}-BKR", "feeder": fid, "parent": None, "kind": "breaker"})
        for r in range(1, 3):
            rid = f"{fid}-R{r}"
            devices.append({"id": rid, "feeder": fid, "parent": f"{fid}-BKR", "kind": "recloser"})
            for u in range(1, 5):
                uid = f"{rid}-FU{u}"
                devices.append({"id": uid, "feeder": fid, "parent": rid, "kind": "fuse"})
                fuses.append(uid)
    transformers_n = max(1, -(-customers // per_transformer))
    transformers = [
        {
            "id": f"T{t:06d}",
            "device": fuses[t % len(fuses)],
            "nominal_v": 220,
            "phases": 1,
            "area": None,
        }
        for t in range(transformers_n)
    ]
    rows = [
        {
            "id": f"C{c:07d}",
            "meter": f"M{c:07d}",
            "transformer": f"T{(c // per_transformer):06d}",
            "class": "residential" if c % 10 else "commercial",
            "critical": c % 997 == 0,
            "member": c % 2 == 0,
            "language": "zh-CN" if c % 5 else "en",
            "quiet_hours": "22:00-07:00" if c % 3 == 0 else None,
            "contacts": {
                "sms": f"+86138{c:08d}",
                "email": f"c{c}@example.com" if c % 4 == 0 else None,
                "wechat": None,
                "webhook": None,
            },
        }
        for c in range(customers)
    ]
    return {"feeders": feeders, "devices": devices, "transformers": transformers, "customers": rows}


DESIGN_EXAMPLE: dict[str, Any] = {
    "feeders": [{"id": "F01", "name": "Yunhe 10kV #1", "substation": "S1", "area": "urban"}],
    "devices": [
        {"id": "F01-BKR", "feeder": "F01", "parent": None, "kind": "breaker"},
        {"id": "F01-R1", "feeder": "F01", "parent": "F01-BKR", "kind": "recloser"},
        {"id": "F01-FU7", "feeder": "F01", "parent": "F01-R1", "kind": "fuse"},
    ],
    "transformers": [
        {"id": "T0001", "device": "F01-FU7", "nominal_v": 220, "phases": 1, "area": None}
    ],
    "customers": [
        {
            "id": "C000001",
            "meter": "M000001",
            "transformer": "T0001",
            "class": "residential",
            "critical": False,
            "member": False,
            "language": "zh-CN",
            "quiet_hours": "22:00-07:00",
            "contacts": {"sms": "+8613800000001", "email": None, "wechat": None, "webhook": None},
        }
    ],
}
