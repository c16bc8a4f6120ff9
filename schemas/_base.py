"""Building blocks shared by every wire format: the strict base model and common field types."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

# Ids are opaque, non-empty strings; the cap keeps a hostile message from bloating keys.
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# RFC 3339 with an offset: naive timestamps are rejected, never guessed.
Timestamp = AwareDatetime
Area = Literal["urban", "rural", "remote"]
Channel = Literal["sms", "wechat", "email", "webhook"]


class WireModel(BaseModel):
    """A closed, strict wire format: no coercion of types, no unknown fields, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
