"""Small control messages: topology version bumps and AMI ping commands."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas._base import Id, Timestamp, WireModel


class TopologyChanged(WireModel):
    version: Annotated[int, Field(ge=1)]
    changed_at: Timestamp


class AmiCommand(WireModel):
    command_id: Id
    meter_id: Id
    command: Literal["ping"]
    requested_at: Timestamp
    incident_id: Id
