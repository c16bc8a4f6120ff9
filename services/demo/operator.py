"""Applies the demo dispatcher's planned actions through the same handler operators use."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import UnitOfWork
from services.demo.dispatcher import Dispatcher, OperatorAction
from services.incidents.actions import perform_action
from services.incidents.entrypoints.service import IncidentsService
from services.incidents.errors import InvalidRequest, InvalidTransition, NotFound

log = structlog.get_logger(__name__)


async def apply_action(
    sessions: async_sessionmaker[AsyncSession], incidents: IncidentsService, action: OperatorAction
) -> bool:
    """Perform one action; False when the incident no longer allows it (merged, restored,
    closed meanwhile) — an operator would simply see the new state and move on."""
    params = dict(action.params)
    if action.action == "arrived":
        params.setdefault("at", action.at.isoformat())
    async with UnitOfWork(sessions) as uow:
        try:
            await perform_action(uow, action.incident_id, action.action, params,
                                 Dispatcher.actor, None, incidents.ctx)
        except (NotFound, InvalidTransition, InvalidRequest) as exc:
            log.debug("dispatcher action skipped", incident_id=action.incident_id,
                      action=action.action, reason=str(exc))
            return False
        await uow.commit()
    return True
