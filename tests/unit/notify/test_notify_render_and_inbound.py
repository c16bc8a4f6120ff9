"""Message rendering (both languages, every stage) and the inbound SMS reply router."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.notify.domain.model import STAGES
from services.notify.entrypoints.inbound import ReplyContext, interpret_reply, make_inbound_router
from services.notify.render import render

CONTEXT = {
    "incident_id": "INC-20260714-7F3A21",
    "cause": "equipment",
    "etr": "2026-07-14T10:30:00+00:00",
    "previous_etr": "2026-07-14T09:00:00+00:00",
    "restored_at": "2026-07-14T11:02:00+00:00",
    "planned_start": "2026-07-21T01:00:00+00:00",
    "planned_end": "2026-07-21T09:00:00+00:00",
}


class TestRender:
    @pytest.mark.parametrize("stage", STAGES)
    @pytest.mark.parametrize("language", ["zh-CN", "en"])
    def test_every_stage_has_short_sms_and_reference(self, stage: str, language: str) -> None:
        subject, body = render(stage, language, CONTEXT, channel="sms")
        assert "7F3A21" in subject
        assert "7F3A21" in body
        assert "None" not in body
        assert len(body) <= (90 if language == "zh-CN" else 200)

    def test_etr_in_local_time_zh(self) -> None:
        _, body = render("etr_changed", "zh-CN", CONTEXT)
        assert "调整为7月14日18:30（原7月14日17:00）" in body
        assert body.startswith("【国网供电】尊敬的客户")

    def test_unknown_language_falls_back_to_zh_cn(self) -> None:
        assert render("restored", "fr", CONTEXT) == render("restored", "zh-CN", CONTEXT)

    def test_cached_text_depends_on_every_input(self) -> None:
        first = render("etr_set", "en", CONTEXT, channel="sms")
        assert render("etr_set", "en", dict(CONTEXT), channel="sms") == first  # cache hit
        later = {**CONTEXT, "etr": "2026-07-14T12:00:00+00:00"}
        assert "20:00" in render("etr_set", "en", later, channel="sms")[1]
        assert render("etr_set", "en", CONTEXT, channel="email") != first
        assert render("etr_set", "zh-CN", CONTEXT, channel="sms") != first

    def test_unhashable_payload_values_render_without_the_cache(self) -> None:
        context = {**CONTEXT, "extra": ["not", "hashable"]}
        assert render("etr_set", "en", context) == render("etr_set", "en", CONTEXT)

    def test_email_gets_the_long_body(self) -> None:
        _, short = render("outage_detected", "en", CONTEXT, channel="sms")
        _, long = render("outage_detected", "en", CONTEXT, channel="email")
        assert long.startswith("Dear customer,")
        assert "an equipment fault" in long
        assert len(long) > len(short)


class TestInterpretReply:
    @pytest.mark.parametrize(
        ("text", "last", "expected"),
        [
            ("1", "restored", ("still_out", None)),
            (" １ ", None, ("still_out", None)),
            ("1", "survey", ("survey", 1)),
            ("5", "survey", ("survey", 5)),
            ("5", "restored", None),
            ("hello", "survey", None),
        ],
    )
    def test_meaning(self, text: str, last: str | None, expected: object) -> None:
        assert interpret_reply(text, last) == expected


class TestInboundRouter:
    async def post(self, body: dict[str, Any]) -> tuple[httpx.Response, list[tuple[Any, ...]]]:
        published: list[tuple[Any, ...]] = []

        async def publish(topic: str, key: str, value: dict[str, Any]) -> None:
            published.append((topic, key, value))

        async def lookup(phone: str) -> ReplyContext | None:
            contexts = {
                "+8613800000001": ReplyContext("C000001", "restored", "INC-1"),
                "+8613800000002": ReplyContext("C000002", "survey", "INC-2"),
            }
            return contexts.get(phone)

        app = FastAPI()
        app.include_router(make_inbound_router(publish, lookup))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/inbound/sms", json=body), published

    async def test_still_out_reply_is_published(self) -> None:
        at = "2026-07-14T19:10:00+08:00"
        resp, published = await self.post(
            {"from": "+8613800000001", "text": "1", "received_at": at}
        )
        assert resp.status_code == 202
        ((topic, key, report),) = published
        assert (topic, key) == ("grid.customer-reports.v1", "C000001")
        assert report["kind"] == "still_out"
        assert report["channel"] == "sms"
        assert report["incident_id"] == "INC-1"
        assert report["event_id"].startswith("sms-")
        again, _ = await self.post({"from": "+8613800000001", "text": "1", "received_at": at})
        assert again.json()["report"]["event_id"] == report["event_id"]

    async def test_survey_score(self) -> None:
        body = {"from": "+8613800000002", "text": "4", "received_at": "2026-07-14T20:00:00Z"}
        _, published = await self.post(body)
        assert (published[0][2]["kind"], published[0][2]["score"]) == ("survey", 4)

    async def test_unknown_phone_is_404_problem(self) -> None:
        body = {"from": "+8613999999999", "text": "1", "received_at": "2026-07-14T20:00:00Z"}
        resp, published = await self.post(body)
        assert resp.status_code == 404
        assert resp.headers["content-type"] == "application/problem+json"
        assert published == []

    async def test_unrecognised_text_publishes_nothing(self) -> None:
        body = {"from": "+8613800000001", "text": "thanks", "received_at": "2026-07-14T20:00:00Z"}
        resp, published = await self.post(body)
        assert (resp.status_code, resp.json()["accepted"], published) == (202, False, [])
