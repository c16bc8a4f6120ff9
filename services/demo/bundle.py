"""The bundled sample county and typhoon scenario, and writing generated ones to disk."""

from __future__ import annotations

import gzip
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from services.demo.county import CountyShape, generate_county
from services.demo.typhoon import Scenario, generate_typhoon

BUNDLED_TOPOLOGY = "county.json.gz"
BUNDLED_SCENARIO = "typhoon.jsonl.gz"


def bundled_path(name: str) -> Path:
    return Path(str(resources.files("services.demo") / "data" / name))


def generate(customers: int = 20_000, seed: int = 7) -> tuple[dict[str, Any], Scenario]:
    """A county of ``customers`` customers and its typhoon scenario, deterministically."""
    topology = generate_county(CountyShape(customers=customers, seed=seed))
    return topology, generate_typhoon(topology, seed=seed)


def topology_bytes(topology: dict[str, Any]) -> bytes:
    return orjson.dumps(topology, option=orjson.OPT_INDENT_2) + b"\n"


def scenario_bytes(scenario: Scenario) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in scenario.lines)


def truth_bytes(scenario: Scenario) -> bytes:
    doc = {"faults": [asdict(t) for t in scenario.truth], "bad_messages": scenario.bad_messages}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def write_generated(out_dir: Path, customers: int, seed: int) -> dict[str, Path]:
    """Write topology.json, scenario.jsonl and truth.json into ``out_dir``."""
    topology, scenario = generate(customers, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"topology": out_dir / "topology.json", "scenario": out_dir / "scenario.jsonl",
             "truth": out_dir / "truth.json"}
    paths["topology"].write_bytes(topology_bytes(topology))
    paths["scenario"].write_bytes(scenario_bytes(scenario))
    paths["truth"].write_bytes(truth_bytes(scenario))
    return paths


def write_bundle(data_dir: Path) -> None:
    """Regenerate the bundled files (mtime 0 so the gzip bytes are reproducible)."""
    topology, scenario = generate()
    for name, payload in ((BUNDLED_TOPOLOGY, topology_bytes(topology)),
                          (BUNDLED_SCENARIO, scenario_bytes(scenario)),
                          ("typhoon-truth.json.gz", truth_bytes(scenario))):
        (data_dir / name).write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))
