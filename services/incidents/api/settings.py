"""Settings of the operator API: the common ones plus how bearer tokens are verified."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings


class ApiSettings(CommonSettings):
    """``OUTAGEDESK_JWT_SECRET`` (HS256) and optionally an RS256 public key verify tokens."""

    jwt_audience: str = "outagedesk"
    # PEM file of an RS256 public key; tokens signed by an identity provider then verify too.
    jwt_public_key_file: Path | None = None
    jwt_leeway_s: int = Field(default=30, ge=0)
    api_page_max: int = Field(default=200, ge=1)
