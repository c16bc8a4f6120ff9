"""Message text: Jinja2 templates per stage and language → (subject, body).

Templates live in ``templates/<language>/<stage>.txt.j2`` with three blocks: ``subject``,
``short`` (SMS and WeChat: one or two SMS segments) and ``body`` (e-mail, webhook). Times
are shown in the customer's local time zone (``OUTAGEDESK_TIMEZONE``); causes and the
place are turned into words here so templates stay plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notify.domain.model import STAGES, IncidentInfo, JobSpec, parse_time
from services.notify.domain.preferences import Language, choose_language

TEMPLATE_DIR = Path(__file__).parent / "templates"
SHORT_CHANNELS = frozenset({"sms", "wechat", "file"})
BRAND: dict[Language, str] = {"zh-CN": "国网供电", "en": "State Grid"}
HOTLINE = "95598"
PLACE_DEFAULT: dict[Language, str] = {"zh-CN": "区域", "en": "your area"}
# cause code (set by operators at close, or known at once for planned work) → words
CAUSES: dict[str, tuple[str, str]] = {
    "unknown": ("突发故障", "a fault"),
    "equipment": ("设备故障", "an equipment fault"),
    "weather": ("恶劣天气", "severe weather"),
    "typhoon": ("台风", "the typhoon"),
    "lightning": ("雷击", "a lightning strike"),
    "flood": ("水淹", "flooding"),
    "tree": ("树木碰线", "trees touching the lines"),
    "animal": ("小动物触碰线路", "an animal on the lines"),
    "vehicle": ("车辆撞击电力设施", "a vehicle hitting a pole"),
    "third_party": ("外力破坏", "third-party damage"),
    "construction": ("施工外破", "construction damage"),
    "overload": ("线路过载", "overloading"),
    "planned": ("电网设备计划检修", "planned maintenance"),
    "maintenance": ("电网设备计划检修", "planned maintenance"),
}
TIME_FIELDS = ("etr", "previous_etr", "restored_at", "planned_start", "planned_end")


class UnknownTemplate(LookupError):
    code = "unknown_template"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(("html", "xml")),  # plain-text templates: no escaping
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
    )


def format_local(value: datetime, language: Language, tz: ZoneInfo) -> str:
    """A time as customers read it: ``7月14日18:30`` or ``18:30 on 14 Jul``."""
    local = value.astimezone(tz)
    if language == "en":
        return f"{local:%H:%M} on {local.day} {local:%b}"
    return f"{local.month}月{local.day}日{local:%H:%M}"


def cause_text(code: str | None, language: Language, *, planned: bool = False) -> str:
    """Words for a cause code; unknown codes read as a fault (or planned maintenance)."""
    default = "planned" if planned else "unknown"
    zh, en = CAUSES.get(code or default, CAUSES[default])
    return en if language == "en" else zh


def reference(incident_id: str) -> str:
    """A short reference customers can quote: the last 6 characters of the incident id."""
    return incident_id[-6:].upper()


def render(
    stage: str,
    language: str,
    context: Mapping[str, Any],
    *,
    channel: str = "sms",
    tz: ZoneInfo | None = None,
) -> tuple[str, str]:
    """Render a stage's message → (subject, body); SMS, WeChat and file get the short body.

    ``context`` keys: ``incident_id`` (required), ``area`` (a place name), ``cause`` (a cause
    code), ``kind``, ``etr``, ``previous_etr``, ``restored_at``, ``planned_start``,
    ``planned_end`` (datetimes or RFC 3339 strings), ``brand``, ``hotline``.
    """
    tz = tz or _DEFAULT_TZ
    short = channel in SHORT_CHANNELS
    try:
        key: Any = (stage, language, short, tz, tuple(context.items()))
        hash(key)
    except TypeError:  # an unhashable value in a job payload: render without the cache
        key = None
    if key is not None and (found := _RENDERED.get(key)) is not None:
        return found
    rendered = _render(stage, language, context, short, tz)
    if key is not None:
        if len(_RENDERED) >= RENDER_CACHE_SIZE:
            _RENDERED.clear()
        _RENDERED[key] = rendered
    return rendered


# A feeder outage sends the same words to thousands of customers: the text depends only
# on the stage, language, channel kind and the context (incident, place, times), so it is
# rendered once per distinct combination.
RENDER_CACHE_SIZE = 4096
_RENDERED: dict[Any, tuple[str, str]] = {}
_DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


def _render(
    stage: str, language: str, context: Mapping[str, Any], short: bool, tz: ZoneInfo
) -> tuple[str, str]:
    if stage not in STAGES:
        raise UnknownTemplate(f"no template for stage {stage!r}")
    lang = choose_language(language)
    values: dict[str, Any] = {
        "brand": context.get("brand") or BRAND[lang],
        "hotline": context.get("hotline") or HOTLINE,
        "place": context.get("area") or PLACE_DEFAULT[lang],
        "cause": cause_text(context.get("cause"), lang, planned=context.get("kind") == "planned"),
        "ref": reference(str(context["incident_id"])),
    }
    for name in TIME_FIELDS:
        when = parse_time(context.get(name))
        values[name] = format_local(when, lang, tz) if when else None
    template = _environment().get_template(f"{lang}/{stage}.txt.j2")
    ctx = template.new_context(values)
    subject = "".join(template.blocks["subject"](ctx)).strip()
    block = "short" if short else "body"
    body = "".join(template.blocks[block](ctx)).strip()
    return subject, body


def context_for(
    spec: JobSpec, incident: IncidentInfo | None, *, area_name: str | None = None
) -> dict[str, Any]:
    """The render context of a job: the incident as notify knows it, then the job payload."""
    ctx: dict[str, Any] = {"incident_id": spec.incident_id, "area": area_name}
    if incident is not None:
        ctx.update(
            kind=incident.kind,
            cause=incident.cause,
            etr=incident.etr,
            planned_start=incident.planned_start,
            planned_end=incident.planned_end,
        )
    ctx.update(spec.payload)
    return ctx
