"""Storing and reading the topology on PostgreSQL and SQLite; the load command."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from topology_data import DESIGN_EXAMPLE, synthetic_topology
from typer.testing import CliRunner

from schemas.misc import TopologyChanged
from services.cli import build_app
from services.common.db import UnitOfWork, session_factory
from services.common.topology.loader import TopologyError, build_topology
from services.common.topology.loading import load_file_into_database
from services.common.topology.model import Topology
from services.common.topology.orm import customers
from services.common.topology.repository import (
    load_topology,
    store_topology,
    topology_version,
)

pytestmark = pytest.mark.postgres


async def _store(engine: AsyncEngine, topo: Topology) -> int:
    async with UnitOfWork(session_factory(engine)) as uow:
        version = await store_topology(uow.session, topo)
        await uow.commit()
    return version


async def _load(engine: AsyncEngine) -> Topology:
    async with UnitOfWork(session_factory(engine)) as uow:
        return await load_topology(uow.session)


def _same(a: Topology, b: Topology) -> None:
    assert a.feeders == b.feeders
    assert a.devices == b.devices
    assert a.transformers == b.transformers
    assert a.customers == b.customers


class TestStoreTopology:
    async def test_empty_database_reads_version_zero(self, engine: AsyncEngine) -> None:
        topo = await _load(engine)
        assert (topo.version, topo.customers) == (0, {})

    async def test_round_trip(self, engine: AsyncEngine) -> None:
        original = build_topology(synthetic_topology(1500))
        assert await _store(engine, original) == 1
        stored = await _load(engine)
        _same(stored, original)
        assert stored.version == 1
        assert stored.feeder_head == original.feeder_head

    async def test_reload_upserts_and_bumps_version(self, engine: AsyncEngine) -> None:
        data = synthetic_topology(1500)
        await _store(engine, build_topology(data))
        changed = copy.deepcopy(data)
        changed["customers"][7]["language"] = "en"
        changed["customers"][8]["contacts"]["sms"] = None
        assert await _store(engine, build_topology(changed)) == 2
        stored = await _load(engine)
        assert stored.version == 2
        assert len(stored.customers) == 1500
        assert stored.customers["C0000007"].language == "en"
        assert stored.customers["C0000008"].contacts.sms is None
        _same(stored, build_topology(changed))
        # the same file again: nothing changes but the version
        assert await _store(engine, build_topology(changed)) == 3
        _same(await _load(engine), build_topology(changed))

    async def test_rows_absent_from_the_file_are_deleted(self, engine: AsyncEngine) -> None:
        data = synthetic_topology(40)
        await _store(engine, build_topology(data))
        smaller = copy.deepcopy(data)
        smaller["customers"] = smaller["customers"][:30]
        # two customers swap meters: allowed, the meter index is not unique
        a, b = smaller["customers"][0], smaller["customers"][1]
        a["meter"], b["meter"] = b["meter"], a["meter"]
        await _store(engine, build_topology(smaller))
        stored = await _load(engine)
        assert len(stored.customers) == 30
        assert stored.customer_by_meter["M0000001"] == "C0000000"

    async def test_rolled_back_store_leaves_previous_topology(self, engine: AsyncEngine) -> None:
        first = build_topology(DESIGN_EXAMPLE)
        await _store(engine, first)
        async with UnitOfWork(session_factory(engine)) as uow:
            await store_topology(uow.session, build_topology(synthetic_topology(50)))
            # leaving without commit() rolls back
        stored = await _load(engine)
        assert stored.version == 1
        _same(stored, first)


class TestLoadCommand:
    def test_bad_file_exits_2_and_loads_nothing(self, topology_db_url: str, tmp_path: Path) -> None:
        good = tmp_path / "good.json"
        good.write_bytes(orjson.dumps(DESIGN_EXAMPLE))
        runner = CliRunner()
        app = build_app()
        ok = runner.invoke(app, ["topology", "load", str(good), "--database-url", topology_db_url])
        assert ok.exit_code == 0, ok.output
        assert "version 1" in ok.output
        bad_data: dict[str, Any] = copy.deepcopy(DESIGN_EXAMPLE)
        bad_data["devices"][2]["parent"] = "X"
        bad_data["customers"].append({**bad_data["customers"][0], "id": "C2"})
        bad = tmp_path / "bad.json"
        bad.write_bytes(orjson.dumps(bad_data))
        result = runner.invoke(
            app, ["topology", "load", str(bad), "--database-url", topology_db_url]
        )
        assert result.exit_code == 2
        assert "devices[2].parent: unknown device 'X'" in result.output
        assert "customers[1].meter: duplicate meter 'M000001'" in result.output
        assert "nothing loaded" in result.output

        async def version() -> int:
            from services.common.db import create_engine

            engine = create_engine(topology_db_url)
            try:
                async with UnitOfWork(session_factory(engine)) as uow:
                    return await topology_version(uow.session)
            finally:
                await engine.dispose()

        import asyncio

        assert asyncio.run(version()) == 1

    async def test_on_loaded_announces_the_version_after_commit(
        self, topology_db_url: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "t.json"
        path.write_bytes(orjson.dumps(DESIGN_EXAMPLE))
        seen: list[TopologyChanged] = []

        async def on_loaded(message: TopologyChanged) -> None:
            seen.append(message)

        at = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)
        await load_file_into_database(topology_db_url, path, on_loaded=on_loaded, now=lambda: at)
        await load_file_into_database(topology_db_url, path, on_loaded=on_loaded, now=lambda: at)
        assert seen == [
            TopologyChanged(version=1, changed_at=at),
            TopologyChanged(version=2, changed_at=at),
        ]

    async def test_invalid_file_never_reaches_on_loaded(
        self, topology_db_url: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "t.json"
        path.write_bytes(b'{"feeders": []}')
        seen: list[TopologyChanged] = []

        async def on_loaded(message: TopologyChanged) -> None:
            seen.append(message)

        with pytest.raises(TopologyError):
            await load_file_into_database(topology_db_url, path, on_loaded=on_loaded)
        assert seen == []


class TestHundredThousandCustomers:
    async def test_stores_and_reloads_a_utility_sized_network(
        self, topology_pg_url: str, tmp_path: Path
    ) -> None:
        # How fast is a benchmark's business (the bench figures), not a timed test's.
        path = tmp_path / "big.json"
        path.write_bytes(orjson.dumps(synthetic_topology(100_000)))
        topo = await load_file_into_database(topology_pg_url, path)
        again = await load_file_into_database(topology_pg_url, path)
        assert (topo.version, again.version) == (1, 2)
        assert len(again.customers) == 100_000
        from services.common.db import create_engine

        engine = create_engine(topology_pg_url)
        try:
            async with engine.connect() as conn:
                count = await conn.execute(sa.select(sa.func.count()).select_from(customers))
                assert count.scalar_one() == 100_000
        finally:
            await engine.dispose()
