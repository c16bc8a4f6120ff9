"""``outagedesk impact calibrate``: fit the impact weights to the stored surveys (DESIGN 9).

Each survey is matched to the impact inputs stored for that customer and incident
(``customer_impacts.inputs``); the weights a..h are fitted by non-negative least squares on
100·(5 − score)/4 and R² is printed before (the policy's weights) and after. Every run is
stored in ``calibrations`` (the satisfaction report shows the latest R²); ``--apply`` marks
the run as adopted and prints the ``impact.weights`` block to put into the policy file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

impact_app = typer.Typer(help="Satisfaction impact (DESIGN section 9).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(impact_app, name="impact")


@impact_app.command("calibrate")
def calibrate_command(
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: OUTAGEDESK_DATABASE_URL")
    ] = None,
    policy_file: Annotated[
        Path | None, typer.Option("--policy-file", help="Default: OUTAGEDESK_POLICY_FILE")
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Adopt the fitted weights")] = False,
) -> None:
    """Fit the impact weights to the surveys; print R² before and after and the weights."""
    from services.common.policy import load_policy
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    url = database_url or settings.database_url
    policy = load_policy(policy_file or settings.policy_file)
    try:
        result = asyncio.run(calibrate_database(url, policy, apply=apply))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in describe(result, apply):
        typer.echo(line)


async def calibrate_database(url: str, policy: Any, *, apply: bool) -> Any:
    """Fit on the database at ``url``, store the run; the CalibrationResult."""
    from services.common.clock import WallClock
    from services.common.db import UnitOfWork, create_engine, session_factory
    from services.incidents.calibration_store import run_calibration

    engine = create_engine(url)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            result = await run_calibration(uow.session, policy, WallClock().now(), apply=apply)
            await uow.commit()
        return result
    finally:
        await engine.dispose()


def describe(result: Any, applied: bool) -> list[str]:
    """The lines printed for a calibration run."""
    from services.incidents.domain.impact import WEIGHT_NAMES

    def r2(value: float | None) -> str:
        return "undefined (all scores equal)" if value is None else f"{value:.4f}"

    w = result.weights
    lines = [
        f"samples: {result.samples}",
        f"R² before: {r2(result.r2_before)}",
        f"R² after:  {r2(result.r2_after)}",
        "weights: " + ", ".join(f"{n}={getattr(w, n):.4g}" for n in WEIGHT_NAMES),
    ]
    if applied:
        block = ", ".join(f"{n}: {round(getattr(w, n), 4)}" for n in WEIGHT_NAMES)
        lines += ["adopted; put this in the policy file:", f"impact:\n  weights: {{{block}}}"]
    return lines
