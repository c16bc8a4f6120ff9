"""The bundled demo, end to end: `outagedesk demo --speed max --no-serve` on the typhoon
scenario, checked against what the scenario's faults imply (its generator's truth), then the
database read back with `outagedesk incidents export` and `outagedesk report reliability`.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from services.demo.bundle import BUNDLED_TOPOLOGY, bundled_path, generate

pytestmark = pytest.mark.e2e
LOCAL = timezone(timedelta(hours=8))  # the county's time (OUTAGEDESK_TIMEZONE Asia/Shanghai)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the demo once for the module, exactly as a user would."""
    workdir = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--speed", "max", "--no-serve"],
        cwd=workdir, capture_output=True, text=True, timeout=1800, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    messages = [orjson.loads(line) for line in
                (workdir / "outagedesk-demo-messages.jsonl").read_bytes().splitlines() if line]
    topology, scenario = generate()
    url = f"sqlite+aiosqlite:///{workdir / 'outagedesk-demo.db'}"
    return {"dir": workdir, "stdout": proc.stdout, "messages": messages, "url": url,
            "topology": topology, "truth": scenario.truth, "bad": scenario.bad_messages,
            "incidents": _export(url)}


def _export(url: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "incidents", "export", "--format", "jsonl",
         "--database-url", url], capture_output=True, check=True, timeout=300)
    return [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _point(inc: dict[str, Any]) -> str:
    return str(inc["device_id"] or inc["transformer_id"] or inc["customer_id"])


def _reachable(customer: dict[str, Any]) -> bool:
    return any(customer["contacts"].values())


def _told_detected(customer: dict[str, Any], faults: list[Any]) -> bool:
    """DESIGN 10: told once out for 5 minutes, unless that falls in the customer's quiet
    hours (then at their end, if still out then); critical customers are told at once."""
    if not _reachable(customer):
        return False
    out_until = max(f.end for f in faults)
    due = min(f.start for f in faults) + timedelta(minutes=5)
    if customer["critical"] or customer["quiet_hours"] is None:
        return out_until > due
    start_s, end_s = customer["quiet_hours"].split("-")
    local = due.astimezone(LOCAL)
    quiet_start = local.replace(hour=int(start_s[:2]), minute=int(start_s[3:]), second=0)
    quiet_end = local.replace(hour=int(end_s[:2]), minute=int(end_s[3:]), second=0)
    if local >= quiet_start:
        return out_until > quiet_end + timedelta(days=1)
    if local < quiet_end:
        return out_until > quiet_end
    return out_until > due


class TestBundledDemo:
    def test_the_bundled_data_is_what_the_generator_makes(self) -> None:
        shipped = orjson.loads(gzip.decompress(bundled_path(BUNDLED_TOPOLOGY).read_bytes()))
        assert shipped == generate()[0]

    def test_every_sustained_fault_becomes_an_incident_at_its_point(
        self, demo_run: dict[str, Any]
    ) -> None:
        by_point = defaultdict(list)
        for inc in demo_run["incidents"]:
            by_point[_point(inc)].append(inc)
        for fault in demo_run["truth"]:
            if fault.kind != "outage" or fault.name == "merge-fuse":
                continue
            found = [i for i in by_point[fault.point] if i["kind"] == "outage"
                     and i["status"] in ("restored", "closed")]
            assert len(found) == 1, (fault.name, by_point[fault.point])
            inc = found[0]
            assert inc["customers_affected"] == len(fault.customers), fault.name
            if fault.parent is not None:
                parent = next(f for f in demo_run["truth"] if f.name == fault.parent)
                assert inc["parent_incident_id"] is not None
                assert inc["parent_incident_id"].startswith("OUT-")
                assert _point({"device_id": parent.point, "transformer_id": None,
                               "customer_id": None}) in inc["parent_incident_id"]

    def test_the_downstream_fuse_was_merged_into_its_recloser(
        self, demo_run: dict[str, Any]
    ) -> None:
        merged = [i for i in demo_run["incidents"] if i["status"] == "merged"]
        survivor = next(i for i in demo_run["incidents"] if _point(i) == "F07-R1")
        assert any(i["merged_into"] == survivor["id"] for i in merged)

    def test_momentaries_open_no_sustained_incident_and_send_nothing(
        self, demo_run: dict[str, Any]
    ) -> None:
        momentary_faults = [f for f in demo_run["truth"] if f.kind == "momentary"]
        sustained_customers = {c for f in demo_run["truth"] if f.kind == "outage"
                               for c in f.customers}
        for fault in momentary_faults:
            at_point = [i for i in demo_run["incidents"] if _point(i) == fault.point]
            assert at_point, fault.name
            assert {i["status"] for i in at_point} == {"momentary"}, fault.name
            only_momentary = set(fault.customers) - sustained_customers
            told = {m["customer_id"] for m in demo_run["messages"]}
            assert not (only_momentary & told), fault.name

    def test_each_reachable_customer_in_a_sustained_outage_is_told_once(
        self, demo_run: dict[str, Any]
    ) -> None:
        customers = {c["id"]: c for c in demo_run["topology"]["customers"]}
        faults = defaultdict(list)
        for f in demo_run["truth"]:
            if f.kind == "outage":
                for c in f.customers:
                    faults[c].append(f)
        detected = Counter(m["customer_id"] for m in demo_run["messages"]
                           if m["stage"] == "outage_detected")
        expected = {c for c, fs in faults.items() if _told_detected(customers[c], fs)}
        assert set(detected) == expected
        assert max(detected.values()) == 1

    def test_nobody_still_in_the_dark_is_told_the_power_is_back(
        self, demo_run: dict[str, Any]
    ) -> None:
        nested = next(f for f in demo_run["truth"] if f.parent is not None)
        for m in demo_run["messages"]:
            if m["stage"] == "restored" and m["customer_id"] in nested.customers:
                assert datetime.fromisoformat(m["sent_at"]) >= nested.end, m

    def test_no_message_is_sent_twice(self, demo_run: dict[str, Any]) -> None:
        keys = Counter((m["customer_id"], m["incident_id"], m["stage"], m["body"])
                       for m in demo_run["messages"])
        assert [k for k, n in keys.items() if n > 1] == []

    def test_bad_input_is_dead_lettered_with_its_code(self, demo_run: dict[str, Any]) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "services.cli", "dead-letters", "export", "--format",
             "jsonl", "--database-url", demo_run["url"]],
            capture_output=True, check=True, timeout=300)
        codes = Counter(orjson.loads(line)["error"]["code"]
                        for line in proc.stdout.splitlines() if line.strip())
        assert dict(codes) == demo_run["bad"]

    def test_interruptions_follow_the_fault_times(self, demo_run: dict[str, Any]) -> None:
        fuse = next(f for f in demo_run["truth"] if f.name == "fuse")
        inc = next(i for i in demo_run["incidents"] if _point(i) == fuse.point)
        minutes = (fuse.end - fuse.start).total_seconds() / 60
        # every customer out for the fault's duration, within the meters' reporting jitter
        assert inc["customer_minutes"] == pytest.approx(minutes * len(fuse.customers),
                                                        rel=0.01)

    def test_the_reliability_report_reads_the_demo_database(
        self, demo_run: dict[str, Any]
    ) -> None:
        start = min(f.start for f in demo_run["truth"]) - timedelta(hours=1)
        end = max(f.end for f in demo_run["truth"]) + timedelta(hours=2)
        proc = subprocess.run(
            [sys.executable, "-m", "services.cli", "report", "reliability", "--start",
             start.isoformat(), "--end", end.isoformat(), "--database-url", demo_run["url"]],
            capture_output=True, check=True, timeout=300)
        group = orjson.loads(proc.stdout)["groups"][0]
        served = len(demo_run["topology"]["customers"])
        assert group["customers_served"] == served
        # One interruption per customer per top-level fault: an absorbed fuse and a nested
        # fuse continue their customers' interruptions instead of adding new ones.
        top_level = [f for f in demo_run["truth"] if f.kind == "outage"
                     and f.parent is None and f.name != "merge-fuse"]
        interruptions = sum(len(f.customers) for f in top_level)
        assert group["customer_interruptions"] == interruptions
        assert group["saifi"] == pytest.approx(interruptions / served)
        assert group["maifi"] > 0

    def test_the_summary_reports_the_run(self, demo_run: dict[str, Any]) -> None:
        out = demo_run["stdout"]
        assert "customers interrupted (sustained)" in out
        assert "SAIFI" in out
        assert "SAIDI" in out
        assert "duplicates 0" in out

