"""``outagedesk report reliability|sla|voltage|satisfaction``: a management report from the
database, as JSON, CSV or an HTML page (DESIGN sections 11 and 14)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer

KINDS = ("reliability", "sla", "voltage", "satisfaction")
GROUPS = ("all", "area", "feeder", "substation")
FORMATS = ("json", "csv", "html")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)


def parse_moment(text: str, tz: tzinfo) -> datetime:
    """A date (local midnight in ``tz``) or an RFC 3339 time (no offset: local time)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tz)
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is neither a date nor an RFC 3339 time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"must be one of {', '.join(allowed)}", param_hint=name)
    return value


async def _run(
    url: str, policy_file: Path | None, kind: str, start: datetime, end: datetime,
    group_by: str, fmt: str, tz: tzinfo,
) -> str:  # fmt: skip
    from services.common.db import create_engine, session_factory
    from services.common.policy import load_policy
    from services.incidents.report_data import build_report
    from services.incidents.reports.render import render_report

    policy = load_policy(policy_file)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            report: dict[str, Any] = await build_report(
                session, kind, start, end, group_by, policy, None, tz=tz  # type: ignore[arg-type]
            )
    finally:
        await engine.dispose()
    body, _media_type = render_report(kind, report, fmt)
    return body


def report_command(
    kind: Annotated[str, typer.Argument(help="reliability, sla, voltage or satisfaction")],
    start: Annotated[str, typer.Option("--start", help="Period start: a date or RFC 3339 time")],
    end: Annotated[str, typer.Option("--end", help="Period end (exclusive), same forms")],
    group_by: Annotated[
        str, typer.Option("--group-by", help="all, area, feeder or substation")
    ] = "all",
    fmt: Annotated[str, typer.Option("--format", help="json, csv or html")] = "json",
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Database URL (default: OUTAGEDESK_DATABASE_URL)"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file instead of stdout")
    ] = None,
) -> None:
    """Print (or write) a reliability, SLA, voltage or satisfaction report for a period.

    Dates mean local midnight in OUTAGEDESK_TIMEZONE (default Asia/Shanghai).
    """
    from zoneinfo import ZoneInfo

    from services.common.settings import CommonSettings

    settings = CommonSettings()
    tz = ZoneInfo(settings.timezone)
    _choice("KIND", kind, KINDS)
    _choice("--group-by", group_by, GROUPS)
    _choice("--format", fmt, FORMATS)
    try:
        first = parse_moment(start, tz)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--start") from exc
    try:
        last = parse_moment(end, tz)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--end") from exc
    if last <= first:
        raise typer.BadParameter("must be after --start", param_hint="--end")
    url = database_url or settings.database_url
    body = asyncio.run(_run(url, settings.policy_file, kind, first, last, group_by, fmt, tz))
    if output is None:
        typer.echo(body, nl=not body.endswith("\n"))
    else:
        output.write_text(body, encoding="utf-8")
