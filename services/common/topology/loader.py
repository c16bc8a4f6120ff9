"""Parse and validate a topology file (DESIGN section 2) into a :class:`Topology`.

Pure: reads the file, touches no database. Accepts a JSON file or a directory holding
``feeders.csv``, ``devices.csv``, ``transformers.csv`` and ``customers.csv`` with the same
columns (a customer's contacts are the columns ``sms``, ``email``, ``wechat``, ``webhook``).
Every error is collected with its path (``devices[3].parent: unknown device 'X'``; the
index is the 0-based row, in CSV the data row after the header) and raised together as
:class:`TopologyError`, so a bad file is reported in one go and nothing is loaded.

Rows are checked by hand rather than with pydantic: a 100,000-customer file must load in a
few seconds.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from services.common.topology.model import Topology
from services.common.topology.validation import SECTIONS, validate_sections

CSV_FILES: dict[str, str] = {section: f"{section}.csv" for section in SECTIONS}
CONTACT_COLUMNS: tuple[str, ...] = ("sms", "email", "wechat", "webhook")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


class TopologyError(Exception):
    """A topology file that cannot be loaded; ``errors`` lists every problem with its path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = "\n".join(errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} topology error(s):\n{shown}{more}")


def load_topology_file(path: str | Path) -> Topology:
    """Read a topology JSON file or CSV directory; raises TopologyError listing every error."""
    source = Path(path)
    if source.is_dir():
        return parse_topology_csv_dir(source)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise TopologyError([f"$: cannot read {source}: {exc.strerror or exc}"]) from exc
    return parse_topology_json(raw)


def parse_topology_json(raw: bytes | str) -> Topology:
    """Parse the JSON form of DESIGN section 2."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TopologyError([f"$: invalid JSON: {exc}"]) from exc
    if not isinstance(data, dict):
        raise TopologyError(
            ["$: expected an object with feeders, devices, transformers, customers"]
        )
    return build_topology(data)


def parse_topology_csv_dir(directory: str | Path) -> Topology:
    """Parse a directory of CSV files, one per section, with the JSON form's columns."""
    root = Path(directory)
    data: dict[str, Any] = {}
    errors: list[str] = []
    for section, filename in CSV_FILES.items():
        path = root / filename
        if not path.is_file():
            errors.append(f"{section}: missing file {filename}")
            continue
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        data[section] = [_csv_row(section, i, row, errors) for i, row in enumerate(rows)]
    if errors:
        raise TopologyError(errors)
    return build_topology(data)


def build_topology(data: Mapping[str, Any]) -> Topology:
    """Validate decoded sections (lists of row objects) and build the Topology."""
    errors: list[str] = []
    topology = validate_sections(data, errors)
    if errors or topology is None:
        raise TopologyError(errors)
    return topology


def _csv_row(section: str, index: int, row: dict[str | Any, Any], errors: list[str]) -> Any:
    """A CSV row as the JSON form would have it: empty cells are null, types converted.

    A cell that does not convert is left as text, so validation reports it with its path.
    """
    out: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None:  # csv puts cells beyond the header under the key None
            errors.append(f"{section}[{index}]: more cells than columns")
            continue
        text = cell.strip() if isinstance(cell, str) else ""
        out[column.strip()] = text or None
    if section == "transformers":
        _convert(out, "nominal_v", float)
        _convert(out, "phases", int)
    elif section == "customers":
        for flag in ("critical", "member"):
            _convert_bool(out, flag)
        out["contacts"] = {c: out.pop(c) for c in CONTACT_COLUMNS if c in out}
        if out.get("language") is None:
            out.pop("language", None)  # an empty cell means the default language
    return out


def _convert(row: dict[str, Any], column: str, kind: type[float] | type[int]) -> None:
    value = row.get(column)
    if value is not None:
        # left as text when it does not convert: validation reports it with its path
        with contextlib.suppress(ValueError):
            row[column] = kind(value)


def _convert_bool(row: dict[str, Any], column: str) -> None:
    value = row.get(column)
    lowered = (value or "").lower()
    if lowered in _TRUE:
        row[column] = True
    elif lowered in _FALSE:
        row[column] = False
