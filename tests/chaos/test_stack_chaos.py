"""DESIGN sections 4 and 13 on the real stack: ingest, incidents and notify as separate
processes on real Kafka and PostgreSQL, a storm replayed into two stacks at the same time —
one left alone (reference), one disturbed: each service SIGKILLed three times, its broker
restarted once and its PostgreSQL restarted once. Afterwards both must hold the same
incidents, interruptions, lifecycle seqs, notification jobs and dead letters; every topic
must carry the same messages (repeats only as identical re-sends of at-least-once
producers); the gateway may see a message twice only if it arrived just before a notify
kill; every consumer resumed by itself, and where a client stalled its watchdog fired.

The reference's incidents service reads the disturbed ingest's signals, mirrored in
partition order: ingest reads three raw topics, and after a restart it may interleave
them differently than before (a restore read before an earlier lockout), which legitimately
changes the incident history (see the report). The reference's own ingest (topics under
``ref.``) still checks ingest: the same signals and the same dead letters.

Determinism on the wall clock: the storm's event times lie ahead of now (ingest accepts up
to 5 min ahead) and the policy's rule windows start after the disturbance is over, so no
timer fires before both stacks have applied every signal; then the timers (confirmation,
momentary, nested check) run on the same, complete evidence in both stacks.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from observe import (
    Monitor,
    broker_offsets_probe,
    db_offsets_probe,
    lag_probe,
    read_topic,
)
from replay import mirror, replay
from stack import (
    TOPIC_PARTITIONS,
    Gateway,
    PrivateKafka,
    PrivatePostgres,
    Stack,
    StackConfig,
    all_topics,
    count,
    create_topics,
    fetch,
    fresh_database,
    merge_roots,
    outcome,
)
from storm_scenario import Windows, compressed_policy, county, latest_event, storm_lines

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.chaos]

CUSTOMERS = 2500
WINDOWS = Windows(sustained_s=60, nested_check_s=40)
REPLAY_S = 80.0  # wall-clock span of the replay
REF = "ref."  # the reference ingest's topics
AHEAD_MAX_S = 270.0  # ingest rejects events more than 300 s ahead of its clock
# fixed per state directory (OUTAGEDESK_CHAOS_DIR): initdb writes it into the configuration
CHAOS_PG_PORT = int(os.environ.get("OUTAGEDESK_CHAOS_PG_PORT", "55633"))
STALL_S = 55.0  # no progress this long while behind = stalled (watchdogs act at 60 s)
SEND_WINDOW_S = 5.0  # a re-sent message's first copy arrived at most this long before a kill
CLAIMABLE = "('pending', 'retry', 'sending')"
RAW_TOPICS = ["grid.meter-events.v1", "grid.device-events.v1", "grid.customer-reports.v1"]


def storm(topology: dict[str, Any]) -> tuple[list[dict[str, Any]], datetime]:
    """The storm placed as far ahead as ingest allows for every line when it is sent."""
    probe_base = datetime(2030, 1, 1, tzinfo=UTC)
    lines = storm_lines(topology, probe_base, WINDOWS)
    n = len(lines)
    ahead = AHEAD_MAX_S
    for i, line in enumerate(lines):
        value = line.get("value")
        if isinstance(value, dict) and "occurred_at" in value:
            offset = (datetime.fromisoformat(value["occurred_at"]) - probe_base).total_seconds()
            ahead = min(ahead, AHEAD_MAX_S + REPLAY_S * i / n - offset)
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=int(ahead))
    return storm_lines(topology, base, WINDOWS), base


def expected_signal_ids(lines: list[dict[str, Any]]) -> set[str]:
    return {
        line["value"]["event_id"]
        for line in lines
        if isinstance(line.get("value"), dict)
        and not str(line["value"].get("event_id", "bad-")).startswith("bad-")
    }


async def quiet(url: str) -> bool:
    """Everything published, every lifecycle event applied by notify, nothing due to send."""
    rows = await fetch(url, f"""SELECT
        (SELECT count(*) FROM incidents.outbox WHERE published_at IS NULL),
        (SELECT count(*) FROM incidents.outbox WHERE topic LIKE '%incidents.lifecycle.v1'),
        (SELECT count(*) FROM notify.processed_events),
        (SELECT count(*) FROM notify.jobs WHERE status IN {CLAIMABLE}
            AND coalesce(next_attempt_at, due_at) <= now()),
        (SELECT count(*) FROM notify.outbox WHERE published_at IS NULL)""")  # noqa: S608
    unpublished, lifecycle, notified, due, n_unpublished = rows[0]
    return bool(unpublished == 0) and lifecycle == notified and due == 0 and n_unpublished == 0


async def wait_until(what: str, deadline: float, check: Any, period: float = 1.0) -> None:
    while True:
        try:
            if await check():
                return
        except Exception:  # noqa: BLE001 - a server restarting; try again
            pass
        assert time.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(period)


class TestStackChaos:
    async def test_kills_and_server_restarts_change_nothing(
        self, pg_url: str, kafka_bootstrap: str, tmp_path: Path
    ) -> None:
        del kafka_bootstrap  # the shared broker must be up, but both runs use their own
        topology = county(CUSTOMERS)
        (tmp_path / "topology.json").write_bytes(orjson.dumps(topology))
        policy = tmp_path / "policy.yaml"
        policy.write_text(compressed_policy(WINDOWS))
        ref_kafka, chaos_kafka = PrivateKafka("ref-kafka"), PrivateKafka("chaos-kafka")
        chaos_pg = PrivatePostgres("chaos-pg", CHAOS_PG_PORT)
        await asyncio.gather(
            asyncio.to_thread(ref_kafka.start, fresh=True),
            asyncio.to_thread(chaos_kafka.start, fresh=True),
            asyncio.to_thread(chaos_pg.start),
        )
        stacks: list[Stack] = []
        gateways: list[Gateway] = []
        try:
            # one after the other: Alembic's migration context is process-global
            ref_url = await fresh_database(pg_url, "outagedesk_chaos_ref",
                                           tmp_path / "topology.json")  # fmt: skip
            chaos_url = await fresh_database(chaos_pg.server_url, "outagedesk_chaos",
                                             tmp_path / "topology.json")  # fmt: skip
            await create_topics(ref_kafka.bootstrap, all_topics(REF), TOPIC_PARTITIONS)
            await create_topics(chaos_kafka.bootstrap, all_topics(), TOPIC_PARTITIONS)
            gateways = [Gateway(tmp_path / "gw-ref.log"), Gateway(tmp_path / "gw-chaos.log")]
            for g in gateways:
                await g.wait_ready()
            ref = Stack(StackConfig("ref", ref_url, ref_kafka.bootstrap, policy, gateways[0].url,
                                    tmp_path / "ref", ingest_prefix=REF))  # fmt: skip
            chaos = Stack(StackConfig("chaos", chaos_url, chaos_kafka.bootstrap, policy,
                                      gateways[1].url, tmp_path / "chaos"))  # fmt: skip
            stacks = [ref, chaos]
            await self._run(topology, ref, chaos, ref_url, chaos_url, chaos_kafka, chaos_pg,
                            gateways, ref_kafka)  # fmt: skip
        finally:
            for s in stacks:
                s.close()
            for g in gateways:
                g.close()
            for server in (ref_kafka, chaos_kafka, chaos_pg):
                await asyncio.to_thread(server.stop)

    async def _run(self, topology: dict[str, Any], ref: Stack, chaos: Stack, ref_url: str,
                   chaos_url: str, chaos_kafka: PrivateKafka, chaos_pg: PrivatePostgres,
                   gateways: list[Gateway], ref_kafka: PrivateKafka) -> None:  # fmt: skip
        lines, base = storm(topology)
        expected = expected_signal_ids(lines)
        first_timer = base + timedelta(seconds=WINDOWS.sustained_s)
        ref.start()
        chaos.start()
        kafka = chaos_kafka.bootstrap
        positions = {
            "ingest": (RAW_TOPICS, broker_offsets_probe(kafka, "ingest", RAW_TOPICS)),
            "incidents": (["grid.signals.v1"], db_offsets_probe(
                chaos_url, "incidents", "incidents", "grid.signals.v1")),
            "notify": (["incidents.lifecycle.v1"], db_offsets_probe(
                chaos_url, "notify", "notify", "incidents.lifecycle.v1")),
        }  # fmt: skip
        probes = {}
        for name, (topics, position) in positions.items():
            probes[name] = position
            probes[f"{name}-lag"] = lag_probe(kafka, topics, position)
        monitor = Monitor(probes, tick=lambda: _sample(chaos, ref))
        monitor.start()
        mirrored = asyncio.Event()
        copy = asyncio.create_task(
            mirror(chaos_kafka.bootstrap, ref_kafka.bootstrap, "grid.signals.v1", mirrored)
        )
        events: list[tuple[str, float, float]] = []  # (what, started, ended)

        def kill(service: Any) -> Any:
            async def hook() -> None:
                t = time.time()
                service.kill9()
                service.start()
                events.append((f"kill {service.label}", t, time.time()))

            return hook

        def restart(what: str, server: Any) -> Any:
            async def hook() -> None:
                t = time.time()
                await asyncio.to_thread(server.restart)
                events.append((f"restart {what}", t, time.time()))

            return hook

        hooks = [
            (0.25, kill(chaos.ingest)), (0.30, kill(chaos.incidents[0])),
            (0.35, kill(chaos.notify)), (0.40, restart("kafka", chaos_kafka)),
            (0.50, kill(chaos.ingest)), (0.55, kill(chaos.incidents[0])),
            (0.60, restart("postgres", chaos_pg)), (0.65, kill(chaos.notify)),
            (0.75, kill(chaos.ingest)), (0.80, kill(chaos.incidents[0])),
        ]  # fmt: skip
        await asyncio.gather(
            replay(lines, ref_kafka.bootstrap, span_s=REPLAY_S, prefix=REF),
            replay(lines, chaos_kafka.bootstrap, span_s=REPLAY_S, hooks=hooks),
        )
        # Every signal applied in both stacks before the first rule window ends.
        deadline = first_timer.timestamp() - 3
        await wait_until(
            "all signals applied before the first timer", deadline,
            lambda: _equals(count(chaos_url, "incidents.processed_signals"), len(expected)),
        )  # fmt: skip
        mirrored.set()
        await asyncio.wait_for(copy, max(1.0, deadline - time.time()))
        for url in (ref_url,):
            await wait_until(
                "all signals applied before the first timer", deadline,
                lambda u=url: _equals(count(u, "incidents.processed_signals"), len(expected)),
            )  # fmt: skip
        # The third notify kill while it sends (after the outage_detected jobs fall due).
        await wait_until("notify sending", time.time() + 240,
                         lambda: _more_than(count(chaos_url, "notify.attempts"), 20))  # fmt: skip
        await kill(chaos.notify)()
        settle = latest_event(lines) + timedelta(seconds=WINDOWS.nested_check_s + 5)
        await asyncio.sleep(max(0.0, settle.timestamp() - time.time()))
        for url in (ref_url, chaos_url):
            await wait_until("quiet", time.time() + 240, lambda u=url: quiet(u))
        await monitor.stop()
        statuses = {**ref.stop(), **chaos.stop()}
        assert all(code == 0 for code in statuses.values()), statuses
        await self._compare(lines, expected, ref_url, chaos_url, ref_kafka, chaos_kafka,
                            gateways, chaos, monitor, events)  # fmt: skip

    async def _compare(self, lines: list[dict[str, Any]], expected: set[str], ref_url: str,
                       chaos_url: str, ref_kafka: PrivateKafka, chaos_kafka: PrivateKafka,
                       gateways: list[Gateway], chaos: Stack, monitor: Monitor,
                       events: list[tuple[str, float, float]]) -> None:  # fmt: skip
        want, got = await outcome(ref_url, REF), await outcome(chaos_url)
        assert want["incidents"], "the storm opened no incident"
        assert {r[2] for r in want["incidents"]} >= {"restored", "momentary"}
        assert any(r[7] for r in want["incidents"]), "no nested outage"
        assert want["dead_letters"]
        assert want["notify_jobs"]
        for name in want:
            assert got[name] == want[name], f"{name} differs from the undisturbed run"
        # A notice of a customer moved by a merge is sent on whichever incident of the merge
        # family fell due first as notify saw it: compared by the family's survivor.
        roots = await merge_roots(chaos_url)
        assert roots == await merge_roots(ref_url)
        # Topics: same messages; repeats only as identical re-sends.
        for topic, theirs_topic, key, volatile in (
            ("grid.signals.v1", REF + "grid.signals.v1", "signal_id", ("received_at",)),
            ("incidents.lifecycle.v1", "incidents.lifecycle.v1", "event_id", ("incident.sla",)),
            # the message of a timestamp_out_of_range names ingest's clock reading, so the
            # re-send of a dead letter after an ingest kill words it differently
            ("grid.dead-letter.v1", REF + "grid.dead-letter.v1", None,
             ("failed_at", "error.message")),
            ("notify.deliveries.v1", "notify.deliveries.v1", None, ("job_id", "occurred_at")),
        ):
            mine = await read_topic(chaos_kafka.bootstrap, topic)
            theirs = [
                raw.replace(f'"topic":"{REF}'.encode(), b'"topic":"')
                for raw in await read_topic(ref_kafka.bootstrap, theirs_topic)
            ]
            if topic == "notify.deliveries.v1":
                mine, theirs = _by_survivor(mine, roots), _by_survivor(theirs, roots)
            assert _distinct(mine, key, volatile) == _distinct(theirs, key, volatile), topic
            if topic == "grid.signals.v1":
                assert set(_distinct(mine, key, volatile)) == expected
            if topic == "incidents.lifecycle.v1":
                _assert_gapless(mine)
                # sla is compared nowhere else on the wire: present in every snapshot (empty
                # only for an incident that ended before any target fell due, e.g. one
                # opened and merged in the same batch)
                assert all(isinstance(orjson.loads(raw)["incident"].get("sla"), dict)
                           for raw in mine), topic  # fmt: skip
        # Gateway: the same messages; a repeat only for a send cut short by a notify kill.
        ref_refs, chaos_refs = [_refs_by_survivor(await g.received(), roots) for g in gateways]
        assert set(chaos_refs) == set(ref_refs)
        assert all(len(t) == 1 for t in ref_refs.values())
        for ref_id, times in chaos_refs.items():
            if len(times) > 1:
                assert any(0 <= k - times[0] <= SEND_WINDOW_S for k in chaos.notify.kills), (
                    f"{ref_id} sent {len(times)} times, not at a notify kill"
                )
        # Stalls: where a consumer's position stood still while records waited for it, its
        # watchdog fired. Whether aiokafka wedges after the broker restart is up to chance;
        # the watchdogs' mechanics are tested deterministically in the services' tests, so
        # here they are checked where a stall happened, and the stalls are reported.
        stalled: dict[str, list[tuple[float, float]]] = {}
        for name, proc in (("ingest", chaos.ingest), ("incidents", chaos.incidents[0]),
                           ("notify", chaos.notify)):  # fmt: skip
            stalls = monitor.series[name].stalls(
                monitor.series[f"{name}-lag"], STALL_S, _alive_between(proc.kills)
            )
            stalled[name] = stalls
            if stalls:
                assert "restarting it" in proc.log_text(), f"{name} stalled {stalls}, no watchdog"
        print(f"stalls (position still while lagging >= {STALL_S:.0f} s):", stalled)
        print("chaos events:", [(w, round(t1 - t0, 1)) for w, t0, t1 in events])
        print("duplicates at the gateway:",
              sum(1 for t in chaos_refs.values() if len(t) > 1), "of", len(chaos_refs))  # fmt: skip


def _sample(*stacks: Stack) -> None:
    for s in stacks:
        s.sample()


async def _equals(value: Any, want: int) -> bool:
    return bool(await value == want)


async def _more_than(value: Any, n: int) -> bool:
    return bool(await value > n)


def _by_survivor(values: list[bytes], roots: dict[str, str]) -> list[bytes]:
    """Delivery outcomes with the incident replaced by its merge family's survivor."""
    out = []
    for raw in values:
        msg = orjson.loads(raw)
        msg["incident_id"] = roots.get(msg["incident_id"], msg["incident_id"])
        out.append(orjson.dumps(msg))
    return out


def _refs_by_survivor(
    refs: dict[str, list[float]], roots: dict[str, str]
) -> dict[str, list[float]]:
    """Gateway references (``incident:customer:stage:revision``) by the family's survivor."""
    out: dict[str, list[float]] = defaultdict(list)
    for ref, times in refs.items():
        incident, rest = ref.split(":", 1)
        out[f"{roots.get(incident, incident)}:{rest}"].extend(times)
    return {ref: sorted(times) for ref, times in out.items()}


def _distinct(values: list[bytes], key: str | None, volatile: tuple[str, ...]) -> dict[Any, Any]:
    """id → message without its ``volatile`` fields (by ``key``, or the whole message;
    ``a.b`` names a nested field).

    A lifecycle snapshot's ``incident.sla`` is volatile: it holds the statuses of the last SLA
    refresh, which ran at the end of an earlier unit of work (or of this one, for an
    incident's first events), so which events share a unit of work decides it — after a
    kill or a late timer round the same events fall into other batches (the incidents crash
    test ignores it for the same reason); it must be present, which ``_compare`` checks."""
    out: dict[Any, Any] = {}
    for raw in values:
        msg = orjson.loads(raw)
        for name in volatile:
            *parents, leaf = name.split(".")
            holder = msg
            for part in parents:
                holder = holder.get(part) if isinstance(holder, dict) else None
            if isinstance(holder, dict):
                holder.pop(leaf, None)
        ident: Any = msg[key] if key is not None else orjson.dumps(msg, option=orjson.OPT_SORT_KEYS)
        if ident in out:
            assert out[ident] == msg, f"{ident} re-sent with a different content"
        out[ident] = msg
    return out


def _assert_gapless(values: list[bytes]) -> None:
    seqs: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for raw in values:
        event = orjson.loads(raw)
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            seqs[event["incident_id"]].append(event["seq"])
    for incident, got in seqs.items():
        assert got == list(range(1, len(got) + 1)), incident


def _alive_between(kills: list[float]) -> Any:
    def alive(t0: float, t1: float) -> bool:
        return not any(t0 <= k <= t1 for k in kills)

    return alive
