"""Inbound SMS replies from gateways → customer reports on ``grid.customer-reports.v1``.

``POST /inbound/sms`` ``{"from", "text", "received_at"}``: "1" is a ``still_out`` report,
except right after a survey, when a digit 1–5 is the survey score. The customer is found by
phone through an injected lookup; unknown phones get 404 problem+json. The report's
``event_id`` is derived from the reply itself, so a gateway's retry is one report.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

CUSTOMER_REPORTS_TOPIC = "grid.customer-reports.v1"


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """Who sent a reply and what we last told them (stage and incident of that message)."""

    customer_id: str
    last_stage: str | None = None
    incident_id: str | None = None


Lookup = Callable[[str], Awaitable[ReplyContext | None]]
Publish = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class InboundSms(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", min_length=3, max_length=32)
    text: str = Field(max_length=1000)
    received_at: datetime


def interpret_reply(text: str, last_stage: str | None) -> tuple[str, int | None] | None:
    """(kind, score) for a reply, or ``None`` when it is not one we act on."""
    # NFKC turns full-width digits (１) from Chinese keyboards into ASCII.
    normalised = unicodedata.normalize("NFKC", text).strip().rstrip(".。")
    if last_stage == "survey" and normalised in {"1", "2", "3", "4", "5"}:
        return "survey", int(normalised)
    if normalised == "1":
        return "still_out", None
    return None


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def make_inbound_router(publish: Publish, lookup: Lookup) -> APIRouter:
    """Router with ``POST /inbound/sms``; ``publish(topic, key, value)`` sends the report."""
    router = APIRouter(tags=["inbound"])

    @router.post("/inbound/sms", status_code=202, response_model=None)
    async def inbound_sms(reply: InboundSms) -> JSONResponse | dict[str, Any]:
        if reply.received_at.tzinfo is None:
            return _problem(422, "Invalid timestamp", "received_at needs a UTC offset")
        context = await lookup(reply.from_)
        if context is None:
            return _problem(404, "Unknown customer", f"no customer has phone {reply.from_}")
        meaning = interpret_reply(reply.text, context.last_stage)
        if meaning is None:
            return {"accepted": False, "reason": "unrecognised_reply"}
        kind, score = meaning
        digest = hashlib.sha256(
            f"{reply.from_}|{reply.received_at.isoformat()}|{reply.text}".encode()
        ).hexdigest()[:24]
        report: dict[str, Any] = {
            "event_id": f"sms-{digest}",
            "customer_id": context.customer_id,
            "occurred_at": reply.received_at.isoformat(),
            "channel": "sms",
            "kind": kind,
            "text": reply.text,
        }
        if score is not None:
            report["score"] = score
        if context.incident_id:
            report["incident_id"] = context.incident_id
        await publish(CUSTOMER_REPORTS_TOPIC, context.customer_id, report)
        return {"accepted": True, "report": report}

    return router
