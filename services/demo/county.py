"""A deterministic sample county: substations, feeders, devices, transformers, customers.

Produces the topology JSON of DESIGN section 2. The bundled demo county (seed 7, 20,000
customers) ships as ``data/county.json.gz``; ``outagedesk scenario generate`` makes larger
ones for benchmarks. Same seed and size → byte-identical output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# (substation, feeder name prefix, area) per feeder, four feeders per substation.
_FEEDER_PLAN: tuple[tuple[str, str, str], ...] = (
    ("S1", "Yunhe Town", "urban"),
    ("S1", "Yunhe Town", "urban"),
    ("S1", "Yunhe Town", "urban"),
    ("S1", "Yunhe Town", "rural"),
    ("S2", "Chongtou", "rural"),
    ("S2", "Chongtou", "rural"),
    ("S2", "Chongtou", "urban"),
    ("S2", "Chongtou", "rural"),
    ("S3", "Anxi Mountain", "remote"),
    ("S3", "Anxi Mountain", "remote"),
    ("S3", "Anxi Mountain", "rural"),
    ("S3", "Anxi Mountain", "remote"),
)
_CUSTOMERS_PER_TRANSFORMER = {"urban": 32, "rural": 22, "remote": 14}
_CLASS_WEIGHTS = (
    ("residential", 0.86), ("commercial", 0.09), ("industrial", 0.02), ("public", 0.03),
)


@dataclass(frozen=True, slots=True)
class CountyShape:
    customers: int = 20_000
    feeders: int = 12
    reclosers_per_feeder: int = 2
    fuses_per_recloser: int = 4
    seed: int = 7


def generate_county(shape: CountyShape) -> dict[str, Any]:
    """The topology document for ``shape``; customers are spread over the feeders by area."""
    rng = random.Random(shape.seed)
    feeders: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    transformers: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []

    plans = [_FEEDER_PLAN[i % len(_FEEDER_PLAN)] for i in range(shape.feeders)]
    # Share of customers per feeder: urban feeders carry more load than remote ones.
    load = {"urban": 1.6, "rural": 1.0, "remote": 0.55}
    weights = [load[area] for _, _, area in plans]
    total_weight = sum(weights)
    per_feeder = [int(shape.customers * w / total_weight) for w in weights]
    per_feeder[0] += shape.customers - sum(per_feeder)

    customer_no = 0
    transformer_no = 0
    for index, (plan, n_customers) in enumerate(zip(plans, per_feeder, strict=True)):
        substation, name, area = plan
        fid = f"F{index + 1:02d}"
        feeders.append({"id": fid, "name": f"{name} 10kV #{index + 1}", "substation": substation,
                        "area": area})
        head = f"{fid}-BKR"
        devices.append({"id": head, "feeder": fid, "parent": None, "kind": "breaker"})
        fuses: list[str] = []
        for r in range(1, shape.reclosers_per_feeder + 1):
            recloser = f"{fid}-R{r}"
            devices.append({"id": recloser, "feeder": fid, "parent": head, "kind": "recloser"})
            for f in range(1, shape.fuses_per_recloser + 1):
                fuse = f"{fid}-R{r}-FU{f}"
                devices.append({"id": fuse, "feeder": fid, "parent": recloser, "kind": "fuse"})
                fuses.append(fuse)
        per_tx = _CUSTOMERS_PER_TRANSFORMER[area]
        n_transformers = max(len(fuses), round(n_customers / per_tx))
        tx_ids: list[str] = []
        for t in range(n_transformers):
            transformer_no += 1
            tid = f"T{transformer_no:05d}"
            tx_ids.append(tid)
            three_phase = rng.random() < 0.08
            transformers.append({
                "id": tid, "device": fuses[t % len(fuses)],
                "nominal_v": 380 if three_phase else 220, "phases": 3 if three_phase else 1,
                "area": None,
            })
        for c in range(n_customers):
            customer_no += 1
            customers.append(_customer(rng, customer_no, tx_ids[c % len(tx_ids)]))
    return {"feeders": feeders, "devices": devices, "transformers": transformers,
            "customers": customers}


def _customer(rng: random.Random, number: int, transformer: str) -> dict[str, Any]:
    roll = rng.random()
    cls = "residential"
    for name, share in _CLASS_WEIGHTS:
        if roll < share:
            cls = name
            break
        roll -= share
    language = "en" if rng.random() < 0.12 else "zh-CN"
    phone = f"+86138{number:08d}"
    contact_roll = rng.random()
    contacts: dict[str, str | None] = {"sms": None, "email": None, "wechat": None, "webhook": None}
    if contact_roll < 0.78:
        contacts["sms"] = phone
    elif contact_roll < 0.90:
        contacts["wechat"] = f"wx-openid-{number:08d}"
    elif contact_roll < 0.97:
        contacts["email"] = f"customer{number}@example.cn"
    elif cls != "residential":
        contacts["webhook"] = f"https://hooks.example.cn/outage/{number}"
    # ~1 % of customers gave no reachable contact at all: they are still counted in reports.
    if contact_roll >= 0.99:
        contacts = {"sms": None, "email": None, "wechat": None, "webhook": None}
    return {
        "id": f"C{number:06d}",
        "meter": f"M{number:06d}",
        "transformer": transformer,
        "class": cls,
        "critical": cls in ("public", "industrial") and rng.random() < 0.15,
        "member": rng.random() < 0.05,
        "language": language,
        "quiet_hours": "22:00-07:00" if rng.random() < 0.7 else None,
        "contacts": contacts,
    }
