"""The topology loader: valid files in JSON and CSV, and every error listed with its path."""

from __future__ import annotations

import copy
import csv
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from topology_data import DESIGN_EXAMPLE, synthetic_topology

from services.common.topology.loader import (
    CONTACT_COLUMNS,
    TopologyError,
    build_topology,
    load_topology_file,
    parse_topology_csv_dir,
    parse_topology_json,
)
from services.common.topology.model import Contacts


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(TopologyError) as info:
        build_topology(data)
    return info.value.errors


def _write_csv_dir(directory: Path, data: dict[str, Any]) -> None:
    for section, rows in data.items():
        flat = []
        for row in rows:
            out = {k: v for k, v in row.items() if k != "contacts"}
            if section == "customers":
                out.update({c: row.get("contacts", {}).get(c) for c in CONTACT_COLUMNS})
            flat.append(
                {
                    k: "" if v is None else str(v).lower() if isinstance(v, bool) else v
                    for k, v in out.items()
                }
            )
        with (directory / f"{section}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(flat[0]))
            writer.writeheader()
            writer.writerows(flat)


class TestValidFiles:
    def test_design_example_loads_with_indexes(self, tmp_path: Path) -> None:
        path = tmp_path / "topology.json"
        path.write_bytes(orjson.dumps(DESIGN_EXAMPLE))
        topo = load_topology_file(path)
        assert topo.feeder_head == {"F01": "F01-BKR"}
        assert topo.device_path("F01-FU7") == ["F01-FU7", "F01-R1", "F01-BKR"]
        assert list(topo.customers_below("F01-BKR")) == ["C000001"]
        assert topo.customer_by_meter == {"M000001": "C000001"}
        customer = topo.customers["C000001"]
        assert customer.class_ == "residential"
        assert customer.quiet_hours == "22:00-07:00"
        assert customer.contacts.first_reachable() == ("sms", "+8613800000001")
        assert topo.area_of_transformer("T0001") == "urban"

    def test_optional_fields_take_defaults(self) -> None:
        data = copy.deepcopy(DESIGN_EXAMPLE)
        data["customers"] = [{"id": "C1", "meter": "M1", "transformer": "T0001", "class": "public"}]
        del data["transformers"][0]["area"]
        topo = build_topology(data)
        c = topo.customers["C1"]
        assert (c.critical, c.member, c.language, c.quiet_hours) == (False, False, "zh-CN", None)
        assert c.contacts == Contacts()
        assert topo.transformers["T0001"].area is None

    def test_csv_directory_equals_json(self, tmp_path: Path) -> None:
        data = synthetic_topology(300)
        _write_csv_dir(tmp_path, data)
        from_csv = load_topology_file(tmp_path)
        from_json = parse_topology_json(orjson.dumps(data))
        assert from_csv.customers == from_json.customers
        assert from_csv.devices == from_json.devices
        assert from_csv.transformers == from_json.transformers
        assert from_csv.feeders == from_json.feeders

    def test_hundred_thousand_customers_load_fast(self, tmp_path: Path) -> None:
        path = tmp_path / "big.json"
        path.write_bytes(orjson.dumps(synthetic_topology(100_000)))
        started = time.perf_counter()
        topo = load_topology_file(path)
        elapsed = time.perf_counter() - started
        assert len(topo.customers) == 100_000
        assert len(topo.customer_by_meter) == 100_000
        assert sum(1 for _ in topo.customers_below("F001-BKR")) == 2000
        # ~1 s on an idle laptop; generous for a loaded CI box, but catches a quadratic step
        assert elapsed < 20, f"loading took {elapsed:.1f} s"


def _broken() -> dict[str, Any]:
    data = copy.deepcopy(DESIGN_EXAMPLE)
    data["feeders"].append({"id": "F02", "name": "No root", "substation": "S1", "area": "urban"})
    data["feeders"].append({"id": "F01", "name": "dup", "substation": "S1", "area": "suburb"})
    data["devices"] += [
        {"id": "F01-R1", "feeder": "F01", "parent": "F01-BKR", "kind": "recloser"},  # dup [3]
        {"id": "F01-FU8", "feeder": "F01", "parent": "X", "kind": "fuse"},  # [4]
        {"id": "F01-BKR2", "feeder": "F01", "parent": None, "kind": "breaker"},  # [5]
        {"id": "F09-BKR", "feeder": "F09", "parent": None, "kind": "breaker"},  # [6]
        {"id": "L1", "feeder": "F01", "parent": "L2", "kind": "switch"},  # [7]
        {"id": "L2", "feeder": "F01", "parent": "L1", "kind": "switch"},  # [8]
        {"id": "F01-S9", "feeder": "F01", "parent": "F01-R1", "kind": "relay"},  # [9]
    ]
    data["transformers"] += [
        {"id": "T0002", "device": "NOPE", "nominal_v": 220, "phases": 1},
        {"id": "T0003", "device": "F01-FU7", "nominal_v": "220", "phases": 4, "colour": "red"},
    ]
    base = data["customers"][0]
    data["customers"] += [
        {**base, "id": "C000002", "transformer": "T9999"},  # dup meter too
        {**base, "id": "C000003", "meter": "M3", "class": "vip", "critical": "yes"},
        {**base, "id": "C000004", "meter": "M4", "quiet_hours": "late", "language": "fr"},
        {**base, "id": "C000005", "meter": "M5", "contacts": {"fax": "1"}},
        {"id": "", "meter": "M6", "transformer": "T0001"},
    ]
    return data


EXPECTED_ERRORS = [
    "feeders[2].id: duplicate id 'F01' (first at feeders[0])",
    "feeders[2].area: invalid value 'suburb'; expected remote | rural | urban",
    "feeders[1]: feeder 'F02' has no root device (parent null)",
    "devices[3].id: duplicate id 'F01-R1' (first at devices[1])",
    "devices[4].parent: unknown device 'X'",
    "devices[5].parent: second root for feeder 'F01' (first is 'F01-BKR' at devices[0])",
    "devices[6].feeder: unknown feeder 'F09'",
    "devices: cycle L1 -> L2 -> L1",
    "devices[9].kind: invalid value 'relay'; expected breaker | fuse | recloser | "
    "sectionaliser | switch",
    "transformers[1].device: unknown device 'NOPE'",
    "transformers[2].nominal_v: expected a positive number, got '220'",
    "transformers[2].phases: invalid value 4; expected 1 | 2 | 3",
    "transformers[2].colour: unknown field",
    "customers[1].transformer: unknown transformer 'T9999'",
    "customers[1].meter: duplicate meter 'M000001' (first at customers[0])",
    "customers[2].class: invalid value 'vip'; expected commercial | industrial | public | "
    "residential",
    "customers[2].critical: expected true or false, got 'yes'",
    "customers[3].quiet_hours: expected HH:MM-HH:MM, got 'late'",
    "customers[3].language: invalid value 'fr'; expected en | zh-CN",
    "customers[4].contacts: unknown channel 'fax'; expected sms | wechat | email | webhook",
    "customers[5].id: expected a non-empty id without surrounding spaces, got ''",
    "customers[5].class: missing",
]


class TestErrors:
    def test_every_error_kind_is_listed_together(self) -> None:
        errors = _errors(_broken())
        missing = [e for e in EXPECTED_ERRORS if e not in errors]
        assert missing == [], f"missing {missing}\ngot {errors}"
        assert len(errors) == len(EXPECTED_ERRORS), errors

    def test_error_message_names_the_count(self) -> None:
        with pytest.raises(TopologyError, match=r"^22 topology error\(s\)"):
            build_topology(_broken())

    def test_cycle_through_a_longer_chain(self) -> None:
        data = copy.deepcopy(DESIGN_EXAMPLE)
        data["devices"][1]["parent"] = "F01-FU7"  # R1 -> FU7 -> R1, BKR still the root
        assert _errors(data) == ["devices: cycle F01-R1 -> F01-FU7 -> F01-R1"]

    def test_parent_on_another_feeder(self) -> None:
        data = copy.deepcopy(DESIGN_EXAMPLE)
        data["feeders"].append({"id": "F02", "name": "n", "substation": "S", "area": "rural"})
        data["devices"].append(
            {"id": "F02-BKR", "feeder": "F02", "parent": None, "kind": "breaker"}
        )
        data["devices"].append(
            {"id": "F02-FU", "feeder": "F02", "parent": "F01-R1", "kind": "fuse"}
        )
        assert _errors(data) == ["devices[4].parent: device 'F01-R1' is on feeder 'F01', not 'F02'"]

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (b"{", "$: invalid JSON"),
            (b"[]", "$: expected an object"),
            (
                b'{"feeders": {}, "devices": [], "transformers": [], "customers": [], "x": 1}',
                "x: unknown section",
            ),
            (
                b'{"feeders": {}, "devices": [], "transformers": [], "customers": []}',
                "feeders: expected a list, got dict",
            ),
            (b'{"devices": [], "transformers": [], "customers": [1]}', "feeders: missing section"),
        ],
    )
    def test_file_level_errors(self, raw: bytes, expected: str) -> None:
        with pytest.raises(TopologyError) as info:
            parse_topology_json(raw)
        assert any(e.startswith(expected) for e in info.value.errors), info.value.errors

    def test_csv_missing_file_and_bad_cells(self, tmp_path: Path) -> None:
        data = copy.deepcopy(DESIGN_EXAMPLE)
        data["customers"][0]["critical"] = "perhaps"
        data["transformers"][0]["nominal_v"] = "high"
        _write_csv_dir(tmp_path, data)
        errors_bad_cells = _csv_errors(tmp_path)
        assert "customers[0].critical: expected true or false, got 'perhaps'" in errors_bad_cells
        assert "transformers[0].nominal_v: expected a positive number, got 'high'" in (
            errors_bad_cells
        )
        (tmp_path / "devices.csv").unlink()
        assert _csv_errors(tmp_path) == ["devices: missing file devices.csv"]

    def test_unreadable_path(self, tmp_path: Path) -> None:
        with pytest.raises(TopologyError, match="cannot read"):
            load_topology_file(tmp_path / "absent.json")


def _csv_errors(directory: Path) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse_topology_csv_dir(directory)
    return info.value.errors
