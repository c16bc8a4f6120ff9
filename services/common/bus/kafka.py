"""The bus on Apache Kafka, through aiokafka.

Every broker call runs under a timeout and failures surface as :class:`BusError`, because
aiokafka can hang while the broker is down (aio-libs/aiokafka#1101). The idempotent
producer is thrown away and recreated after any failed send, because it can wedge on
OutOfOrderSequenceNumber (#1017). aiokafka swallows exceptions raised by rebalance
callbacks; this adapter keeps them and re-raises them from the next ``getmany`` so a failed
``on_assigned`` (e.g. the database being down) is never silently skipped.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.partitioner import murmur2

from services.common.bus.base import (
    BusError,
    OnAssigned,
    OnRevoked,
    OutMessage,
    Record,
    TopicPartition,
)

log = structlog.get_logger(__name__)

# One producer batch per partition holds up to this much (aiokafka's default, 16 KiB, made
# a 5,000-signal send ~100 batches); below the broker's default message.max.bytes (1 MiB).
MAX_BATCH_BYTES = 512 * 1024
MAX_REQUEST_BYTES = 1024 * 1024  # aiokafka's default max_request_size, checked per message
KEY_HASH_CACHE = 100_000  # distinct keys remembered (feeder ids; raw keys of dead letters)


def _ours(tp: KafkaTP) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _theirs(tp: TopicPartition) -> KafkaTP:
    return KafkaTP(tp.topic, tp.partition)


class KafkaBus:
    """Bus adapter for a Kafka cluster at ``bootstrap_servers`` (``host:port[,...]``)."""

    def __init__(
        self,
        bootstrap_servers: str,
        timeout_s: float = 10.0,
        *,
        heartbeat_interval_ms: int = 1000,
        session_timeout_ms: int = 10_000,
        metadata_max_age_ms: int = 5_000,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        """``fetch_max_wait_ms`` bounds the broker's long poll on partitions with nothing
        new. Other requests of a consumer (``lag``'s end offsets) share the connection and
        queue behind that poll, so a consumer that asks for its lag after every batch while
        some subscribed topics are quiet waits up to this long each time."""
        self._bootstrap = bootstrap_servers
        self._timeout_s = timeout_s
        self._consumer_options = {
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "session_timeout_ms": session_timeout_ms,
            "metadata_max_age_ms": metadata_max_age_ms,
            "fetch_max_wait_ms": fetch_max_wait_ms,
        }
        self._open: list[KafkaProducer | KafkaConsumer] = []

    async def create_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            async with asyncio.timeout(self._timeout_s * 2):
                await admin.start()
                response = await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics]
                )
                for topic_error in response.topic_errors:
                    name, code = topic_error[0], topic_error[1]
                    error = for_code(code)
                    if code and error is not TopicAlreadyExistsError:
                        raise BusError(f"cannot create topic {name}: {error.__name__}")
                await self._wait_for_leaders(admin, topics)
        except (KafkaError, TimeoutError) as exc:
            raise BusError(f"create_topics {list(topics)} failed: {exc!r}") from exc
        finally:
            await shutdown_step(admin.close(), self._timeout_s, "admin close")

    async def _wait_for_leaders(self, admin: AIOKafkaAdminClient, topics: Sequence[str]) -> None:
        # Creation is asynchronous in the controller; producers sent to a topic before its
        # leaders exist would only retry, but callers expect a usable topic on return.
        while True:
            described = await admin.describe_topics(list(topics))
            if all(
                t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.05)

    async def producer(self, *, client_id: str = "outagedesk") -> KafkaProducer:
        producer = KafkaProducer(self._bootstrap, client_id, self._timeout_s)
        await producer.start()
        self._open.append(producer)
        return producer

    async def consumer(
        self,
        topics: Sequence[str],
        *,
        group_id: str,
        on_assigned: OnAssigned | None = None,
        on_revoked: OnRevoked | None = None,
        client_id: str = "outagedesk",
    ) -> KafkaConsumer:
        client = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self._consumer_options,
        )
        listener = _Listener(client, on_assigned, on_revoked)
        client.subscribe(list(topics), listener=listener)
        consumer = KafkaConsumer(client, listener, self._timeout_s)
        try:
            async with asyncio.timeout(self._timeout_s):
                await client.start()
        except (KafkaError, TimeoutError) as exc:
            await shutdown_step(client.stop(), self._timeout_s, "consumer stop")
            raise BusError(f"consumer for {list(topics)} could not start: {exc!r}") from exc
        self._open.append(consumer)
        return consumer

    async def close(self) -> None:
        for client in self._open:
            await client.stop()
        self._open.clear()


class KafkaProducer:
    """Idempotent producer (``acks=all``); recreated after any failed send.

    ``send`` fills one aiokafka batch per partition (the batch API) instead of calling
    ``AIOKafkaProducer.send`` per message: the per-message path cost a future, a done
    callback and a pure-Python murmur2 per message, most of a producing service's CPU.
    Partitions are chosen exactly as aiokafka's default partitioner does (murmur2 of the
    key over all partitions; a random one for key None), and each partition's messages are
    appended in the caller's order, so one key's messages keep their order. Concurrent
    ``send`` calls queue their messages one call after the other, in the order the calls
    were made (a FIFO lock), so a caller may pipeline sends without reordering a key.
    """

    def __init__(self, bootstrap: str, client_id: str, timeout_s: float) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._client: AIOKafkaProducer | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._key_hash: dict[bytes, int] = {}  # key → murmur2 & 0x7fffffff (bounded)
        self._enqueue_lock = asyncio.Lock()

    async def start(self) -> None:
        client = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=int(self._timeout_s * 1000),
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                await client.start()
        except (KafkaError, TimeoutError) as exc:
            await shutdown_step(client.stop(), self._timeout_s, "producer stop")
            raise BusError(f"producer could not start: {exc!r}") from exc
        self._client = client

    async def send(self, messages: Sequence[OutMessage]) -> None:
        if self._stopped:
            raise BusError("producer is stopped")
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        # Queue everything first so the batch travels in few requests, then wait for every
        # acknowledgement. Under the lock also the (re)start, so concurrent sends after a
        # failure share one new client.
        async with self._enqueue_lock:
            if self._client is None:
                await self.start()
            client = self._client
            assert client is not None
            try:
                async with asyncio.timeout_at(deadline):
                    futures = await self._enqueue(client, messages)
            except (KafkaError, TimeoutError) as exc:
                raise self._failed(client, len(messages), exc) from exc
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            raise self._failed(client, len(messages), exc) from exc

    def _failed(self, client: AIOKafkaProducer, count: int, exc: BaseException) -> BusError:
        """Retire ``client`` after a failed send (once, if concurrent sends on it fail)."""
        log.warning("bus.producer_send_failed", error=repr(exc), client_id=self._client_id)
        error = BusError(f"send of {count} messages failed: {exc!r}")
        stop = client.stop
        if self._client is not client:
            return error  # a concurrent send on the same client failed first and retired it
        self._client = None
        # Stop the wedged client in the background so the caller learns of the failure
        # within its timeout; stopping a client whose broker is gone can take as long.
        task = asyncio.create_task(shutdown_step(stop(), self._timeout_s, "producer stop"))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return error

    async def _enqueue(
        self, client: AIOKafkaProducer, messages: Sequence[OutMessage]
    ) -> list[asyncio.Future[Any]]:
        """Append every message to its partition's batch and hand the batches to the
        sender; the futures resolve when the broker acknowledged each batch."""
        futures: list[asyncio.Future[Any]] = []
        open_batches: dict[tuple[str, int], Any] = {}
        partitions: dict[str, list[int]] = {}
        unkeyed: dict[str, int] = {}  # sticky random partition per topic for key None
        key_hash = self._key_hash
        for m in messages:
            topic, key, value = m.topic, m.key, m.value
            if len(value) + (len(key) if key is not None else 0) > MAX_REQUEST_BYTES:
                raise MessageSizeTooLargeError(f"a message to {topic} is over the request size")
            parts = partitions.get(topic)
            if parts is None:
                parts = partitions[topic] = sorted(await client.partitions_for(topic))
            if key is None:
                partition = unkeyed.get(topic)
                if partition is None:
                    partition = unkeyed[topic] = random.choice(parts)  # noqa: S311 - spreading load
            else:
                h = key_hash.get(key)
                if h is None:
                    if len(key_hash) >= KEY_HASH_CACHE:
                        key_hash.clear()
                    h = key_hash[key] = murmur2(key) & 0x7FFFFFFF
                partition = parts[h % len(parts)]
            tp = (topic, partition)
            batch = open_batches.get(tp)
            if batch is None:
                batch = open_batches[tp] = client.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                # Full: send it now (the sender starts while we fill the next one).
                futures.append(await self._submit(client, batch, tp))
                batch = open_batches[tp] = client.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # the first always fits
        for tp, batch in open_batches.items():
            futures.append(await self._submit(client, batch, tp))
        return futures

    @staticmethod
    async def _submit(
        client: AIOKafkaProducer, batch: Any, tp: tuple[str, int]
    ) -> asyncio.Future[Any]:
        batch.close()  # ready to drain at once; no per-message send may join it
        future: asyncio.Future[Any] = await client.send_batch(batch, tp[0], partition=tp[1])
        return future

    async def stop(self) -> None:
        self._stopped = True
        if self._client is not None:
            client, self._client = self._client, None
            await shutdown_step(client.stop(), self._timeout_s, "producer stop")
        if self._retiring:
            await asyncio.gather(*self._retiring)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        client: AIOKafkaConsumer,
        on_assigned: OnAssigned | None,
        on_revoked: OnRevoked | None,
    ) -> None:
        self._client = client
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self.error: BaseException | None = None

    async def on_partitions_revoked(self, revoked: set[KafkaTP]) -> None:
        if self._on_revoked is None or not revoked:
            return
        try:
            await self._on_revoked({_ours(tp) for tp in revoked})
        except Exception as exc:  # noqa: BLE001 - aiokafka would swallow it; getmany re-raises
            self.error = exc

    async def on_partitions_assigned(self, assigned: set[KafkaTP]) -> None:
        if self._on_assigned is None or not assigned:
            return
        try:
            offsets = await self._on_assigned({_ours(tp) for tp in assigned})
            for tp, offset in offsets.items():
                if _theirs(tp) in assigned:
                    self._client.seek(_theirs(tp), offset)
        except Exception as exc:  # noqa: BLE001 - aiokafka would swallow it; getmany re-raises
            self.error = exc


class KafkaConsumer:
    def __init__(self, client: AIOKafkaConsumer, listener: _Listener, timeout_s: float) -> None:
        self._client = client
        self._listener = listener
        self._timeout_s = timeout_s
        self._stopped = False

    def _raise_listener_error(self) -> None:
        error, self._listener.error = self._listener.error, None
        if error is not None:
            raise error

    async def getmany(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        if self._stopped:
            raise BusError("consumer is stopped")
        self._raise_listener_error()
        try:
            async with asyncio.timeout(timeout_s + self._timeout_s):
                batches = await self._client.getmany(
                    timeout_ms=int(timeout_s * 1000), max_records=max_records
                )
        except (KafkaError, TimeoutError) as exc:
            raise BusError(f"getmany failed: {exc!r}") from exc
        self._raise_listener_error()
        return [
            Record(r.topic, r.partition, r.offset, r.key, r.value or b"", r.timestamp)
            for records in batches.values()
            for r in records
        ]

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                if offsets is None:
                    await self._client.commit()
                else:
                    await self._client.commit({_theirs(tp): o for tp, o in offsets.items()})
        except (KafkaError, TimeoutError) as exc:
            raise BusError(f"commit failed: {exc!r}") from exc

    def assignment(self) -> set[TopicPartition]:
        return {_ours(tp) for tp in self._client.assignment()}

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        try:
            self._client.seek(_theirs(tp), offset)
        except (KafkaError, ValueError, AssertionError) as exc:
            raise BusError(f"seek {tp} to {offset} failed: {exc!r}") from exc

    async def lag(self) -> int:
        tps = list(self._client.assignment())
        if not tps:
            return 0
        try:
            async with asyncio.timeout(self._timeout_s):
                ends = await self._client.end_offsets(tps)
                positions = [await self._client.position(tp) for tp in tps]
        except (KafkaError, TimeoutError) as exc:
            raise BusError(f"lag failed: {exc!r}") from exc
        return sum(max(0, ends[tp] - pos) for tp, pos in zip(tps, positions, strict=True))

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await shutdown_step(self._client.stop(), self._timeout_s, "consumer stop")


async def shutdown_step(awaitable: Awaitable[object], timeout_s: float, what: str) -> None:
    """Await a shutdown step, giving up after ``timeout_s``: shutdown must not hang."""
    try:
        async with asyncio.timeout(timeout_s):
            await awaitable
    except (KafkaError, TimeoutError, OSError) as exc:
        log.warning("bus.shutdown_step_failed", step=what, error=repr(exc))
    except asyncio.CancelledError as exc:
        # aiokafka's stop() awaits its own tasks; one cancelled by a timed-out start() re-raises
        # CancelledError here although nobody cancelled us. Only our own cancellation propagates.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("bus.shutdown_step_failed", step=what, error=repr(exc))
