"""Row and cross-reference checks of a decoded topology; collects every error with its path.

Used by :mod:`services.common.topology.loader`; kept apart so the file-format code and the
rules stay small. Plain functions over dicts: pydantic per row is too slow for 100k rows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from services.common.topology.model import (
    CHANNELS,
    Contacts,
    Customer,
    Device,
    Feeder,
    Topology,
    Transformer,
)

SECTIONS: tuple[str, ...] = ("feeders", "devices", "transformers", "customers")
AREAS = frozenset({"urban", "rural", "remote"})
DEVICE_KINDS = frozenset({"breaker", "recloser", "sectionaliser", "fuse", "switch"})
CUSTOMER_CLASSES = frozenset({"residential", "commercial", "industrial", "public"})
LANGUAGES = frozenset({"zh-CN", "en"})
PHASES = frozenset({1, 2, 3})
_QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")

_ABSENT = object()
Check = Callable[[Any], str | None]  # value -> error message, or None when valid


def _id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip() == value and value:
        return None
    return f"expected a non-empty id without surrounding spaces, got {value!r}"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else f"expected a string, got {value!r}"


def _optional(check: Check) -> Check:
    def optional(value: Any) -> str | None:
        return None if value is None else check(value)

    return optional


def _enum(allowed: frozenset[Any]) -> Check:
    expected = " | ".join(sorted(str(a) for a in allowed))

    def enum(value: Any) -> str | None:
        if isinstance(value, bool) or value not in allowed:
            return f"invalid value {value!r}; expected {expected}"
        return None

    return enum


def _positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return f"expected a positive number, got {value!r}"
    return None


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def _quiet_hours(value: Any) -> str | None:
    if isinstance(value, str) and _quiet_hours_ok(value):
        return None
    return f"expected HH:MM-HH:MM, got {value!r}"


@functools.lru_cache(maxsize=256)
def _quiet_hours_ok(value: str) -> bool:
    # a few distinct values repeat over 100k customers
    return _QUIET_HOURS.match(value) is not None


def _contacts(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"expected an object with {', '.join(CHANNELS)}, got {value!r}"
    for channel, address in value.items():
        if channel not in CHANNELS:
            return f"unknown channel {channel!r}; expected {' | '.join(CHANNELS)}"
        if address is not None and (not isinstance(address, str) or not address):
            return f"{channel}: expected a non-empty string or null, got {address!r}"
    return None


# field -> (check, required, default when absent)
Spec = dict[str, tuple[Check, bool, Any]]
SPECS: dict[str, Spec] = {
    "feeders": {
        "id": (_id, True, None),
        "name": (_text, True, None),
        "substation": (_text, True, None),
        "area": (_enum(AREAS), True, None),
    },
    "devices": {
        "id": (_id, True, None),
        "feeder": (_id, True, None),
        "parent": (_optional(_id), True, None),
        "kind": (_enum(DEVICE_KINDS), True, None),
    },
    "transformers": {
        "id": (_id, True, None),
        "device": (_id, True, None),
        "nominal_v": (_positive_number, True, None),
        "phases": (_enum(PHASES), True, None),
        "area": (_optional(_enum(AREAS)), False, None),
    },
    "customers": {
        "id": (_id, True, None),
        "meter": (_id, True, None),
        "transformer": (_id, True, None),
        "class": (_enum(CUSTOMER_CLASSES), True, None),
        "critical": (_boolean, False, False),
        "member": (_boolean, False, False),
        "language": (_enum(LANGUAGES), False, "zh-CN"),
        "quiet_hours": (_optional(_quiet_hours), False, None),
        "contacts": (_contacts, False, {}),
    },
}


def _check_rows(section: str, rows: list[Any], errors: list[str]) -> list[dict[str, Any] | None]:
    """Each row checked against its section's spec; None for a row with errors.

    Valid rows are returned as they are (absent optional fields get their defaults when
    the Topology is built), which keeps 100k-row files fast.
    """
    spec = SPECS[section]
    fields = [(name, check, required) for name, (check, required, _default) in spec.items()]
    allowed = spec.keys()
    checked: list[dict[str, Any] | None] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(f"{section}[{index}]: expected an object, got {row!r}")
            checked.append(None)
            continue
        ok = True
        if not allowed >= row.keys():
            for key in row.keys() - allowed:
                errors.append(f"{section}[{index}].{key}: unknown field")
            ok = False
        for name, check, required in fields:
            value = row.get(name, _ABSENT)
            if value is _ABSENT:
                if required:
                    errors.append(f"{section}[{index}].{name}: missing")
                    ok = False
                continue
            message = check(value)
            if message is not None:
                errors.append(f"{section}[{index}].{name}: {message}")
                ok = False
        checked.append(row if ok else None)
    return checked


def _index_ids(section: str, rows: list[Any], errors: list[str]) -> dict[str, int]:
    """id -> index of its first row, for every row with a usable id; reports duplicates.

    Rows with other errors still count, so one bad row does not cascade into "unknown"
    errors for everything that refers to it.
    """
    first: dict[str, int] = {}
    for index, row in enumerate(rows):
        row_id = row.get("id") if isinstance(row, dict) else None
        if not isinstance(row_id, str) or not row_id:
            continue
        if row_id in first:
            first_path = f"{section}[{first[row_id]}]"
            errors.append(f"{section}[{index}].id: duplicate id {row_id!r} (first at {first_path})")
        else:
            first[row_id] = index
    return first


def validate_sections(data: Mapping[str, Any], errors: list[str]) -> Topology | None:
    """Check every row and reference; append each problem to ``errors``.

    Returns the Topology when there was no error, else None.
    """
    for key in data:
        if key not in SECTIONS:
            errors.append(f"{key}: unknown section; expected {', '.join(SECTIONS)}")
    raw: dict[str, list[Any]] = {}
    for section in SECTIONS:
        rows = data.get(section)
        if rows is None:
            errors.append(f"{section}: missing section")
            rows = []
        elif not isinstance(rows, list):
            errors.append(f"{section}: expected a list, got {type(rows).__name__}")
            rows = []
        raw[section] = rows

    checked = {section: _check_rows(section, raw[section], errors) for section in SECTIONS}
    ids = {section: _index_ids(section, raw[section], errors) for section in SECTIONS}
    _check_devices(checked["devices"], ids, raw, errors)
    _check_references(checked, ids, errors)
    if errors:
        return None
    return _build(checked)


def _check_devices(
    devices: list[dict[str, Any] | None],
    ids: dict[str, dict[str, int]],
    raw: dict[str, list[Any]],
    errors: list[str],
) -> None:
    """Feeder and parent references, one root per feeder, no cycles."""
    feeder_ids, device_ids = ids["feeders"], ids["devices"]
    roots: dict[str, int] = {}
    for index, device in enumerate(devices):
        if device is None:
            continue
        path = f"devices[{index}]"
        feeder, parent = device["feeder"], device["parent"]
        if feeder not in feeder_ids:
            errors.append(f"{path}.feeder: unknown feeder {feeder!r}")
        if parent is None:
            if feeder in roots:
                first = roots[feeder]
                errors.append(
                    f"{path}.parent: second root for feeder {feeder!r} "
                    f"(first is {_device_id(raw, first)!r} at devices[{first}])"
                )
            else:
                roots[feeder] = index
        elif parent not in device_ids:
            errors.append(f"{path}.parent: unknown device {parent!r}")
        else:
            parent_row = devices[device_ids[parent]]
            if parent_row is not None and parent_row["feeder"] != feeder:
                errors.append(
                    f"{path}.parent: device {parent!r} is on feeder "
                    f"{parent_row['feeder']!r}, not {feeder!r}"
                )
    for feeder, index in ids["feeders"].items():
        if feeder not in roots:
            errors.append(f"feeders[{index}]: feeder {feeder!r} has no root device (parent null)")
    _check_cycles(devices, device_ids, errors)


def _device_id(raw: dict[str, list[Any]], index: int) -> Any:
    return raw["devices"][index].get("id")


def _check_cycles(
    devices: list[dict[str, Any] | None], device_ids: dict[str, int], errors: list[str]
) -> None:
    parent_of: dict[str, str] = {}
    for device in devices:
        if device is not None and device["parent"] in device_ids:
            parent_of.setdefault(device["id"], device["parent"])
    done: set[str] = set()
    for device in devices:
        if device is None or device["id"] in done:
            continue
        path: list[str] = []
        on_path: dict[str, int] = {}
        current: str | None = device["id"]
        while current is not None and current not in done:
            if current in on_path:
                cycle = path[on_path[current] :]
                errors.append("devices: cycle " + " -> ".join([*cycle, cycle[0]]))
                break
            on_path[current] = len(path)
            path.append(current)
            current = parent_of.get(current)
        done.update(path)


def _check_references(
    checked: dict[str, list[dict[str, Any] | None]],
    ids: dict[str, dict[str, int]],
    errors: list[str],
) -> None:
    device_ids, transformer_ids = ids["devices"], ids["transformers"]
    for index, transformer in enumerate(checked["transformers"]):
        if transformer is not None and transformer["device"] not in device_ids:
            errors.append(f"transformers[{index}].device: unknown device {transformer['device']!r}")
    meters: dict[str, int] = {}
    for index, customer in enumerate(checked["customers"]):
        if customer is None:
            continue
        if customer["transformer"] not in transformer_ids:
            errors.append(
                f"customers[{index}].transformer: unknown transformer {customer['transformer']!r}"
            )
        meter = customer["meter"]
        if meter in meters:
            errors.append(
                f"customers[{index}].meter: duplicate meter {meter!r} "
                f"(first at customers[{meters[meter]}])"
            )
        else:
            meters[meter] = index


def _build(checked: dict[str, list[dict[str, Any] | None]]) -> Topology:
    # Only called without errors, so every row is a checked dict; absent optional fields
    # take the defaults of SPECS.
    rows = {section: [r for r in checked[section] if r is not None] for section in SECTIONS}
    return Topology.build(
        feeders=[Feeder(r["id"], r["name"], r["substation"], r["area"]) for r in rows["feeders"]],
        devices=[Device(r["id"], r["feeder"], r["parent"], r["kind"]) for r in rows["devices"]],
        transformers=[
            Transformer(r["id"], r["device"], float(r["nominal_v"]), r["phases"], r.get("area"))
            for r in rows["transformers"]
        ],
        customers=[
            Customer(
                r["id"],
                r["meter"],
                r["transformer"],
                r["class"],
                r.get("critical", False),
                r.get("member", False),
                r.get("language", "zh-CN"),
                r.get("quiet_hours"),
                _contacts_of(r.get("contacts")),
            )
            for r in rows["customers"]
        ],
    )


_NO_CONTACTS = Contacts()


def _contacts_of(value: dict[str, str | None] | None) -> Contacts:
    if not value:
        return _NO_CONTACTS
    return Contacts(value.get("sms"), value.get("email"), value.get("wechat"), value.get("webhook"))
