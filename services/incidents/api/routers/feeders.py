"""``GET /api/v1/feeders``: the feeders of the stored topology (viewer).

The operator dashboard groups incidents by substation and feeder; snapshots carry only the
feeder id, so the names and substations come from here. A county has tens to a few
thousand feeders, so the list is answered whole.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from services.common.topology import orm as topo
from services.incidents.api.auth import Viewer
from services.incidents.api.context import Uow
from services.incidents.api.problems import problem_responses

router = APIRouter(prefix="/api/v1/feeders", tags=["feeders"])


class Feeder(BaseModel):
    id: str
    name: str
    substation: str
    area: str


class FeederList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"id": "F01", "name": "Yunhe 10kV #1", "substation": "S1", "area": "urban"}
                    ]
                }
            ]
        }
    )

    items: list[Feeder]


@router.get(
    "",
    summary="List the feeders of the network, by substation and id",
    response_model=FeederList,
    responses=problem_responses(401, 403),
)
async def list_feeders(uow: Uow, _principal: Viewer) -> FeederList:
    """Every feeder with its name, substation and area."""
    f = topo.feeders
    rows = await uow.session.execute(
        sa.select(f.c.id, f.c.name, f.c.substation, f.c.area).order_by(f.c.substation, f.c.id)
    )
    return FeederList(items=[Feeder.model_validate(r, from_attributes=True) for r in rows])
