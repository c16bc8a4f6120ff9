"""``outagedesk token create --sub NAME --role ROLE [--ttl 8h]``: an API bearer token.

Signs with ``OUTAGEDESK_JWT_SECRET`` (HS256) for the audience ``OUTAGEDESK_JWT_AUDIENCE``
(default ``outagedesk``) and prints the token alone, so ``$(outagedesk token create …)``
works in scripts.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

token_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


def parse_ttl(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``8h`` or ``7d`` as a duration (at least one second)."""
    match = _TTL.match(text.strip())
    if match is None or int(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 30m, 8h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@token_app.command("create")
def create_token_command(
    sub: Annotated[str, typer.Option("--sub", help="Subject: who the token identifies")],
    role: Annotated[
        list[str],
        typer.Option("--role", help="viewer|operator|supervisor|manager|admin (repeatable)"),
    ],
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 30m, 8h, 7d")] = "8h",
) -> None:
    """Print a signed bearer token for the API."""
    from services.common.clock import WallClock
    from services.incidents.api.auth import create_token
    from services.incidents.api.settings import ApiSettings

    settings = ApiSettings()
    if settings.jwt_secret is None:
        raise typer.BadParameter("set OUTAGEDESK_JWT_SECRET to sign tokens")
    try:
        token = create_token(
            settings.jwt_secret.get_secret_value(),
            sub,
            role,
            now=WallClock().now(),
            ttl=parse_ttl(ttl),
            audience=settings.jwt_audience,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from exc
    typer.echo(token)
