"""Typed errors of the incidents service; each carries a code and the HTTP status it maps to.

The API renders them as problem+json (``code`` → ``type``/``title``, ``status``); consumers
never see them (operator actions only).
"""

from __future__ import annotations

from collections.abc import Iterable


class IncidentsError(Exception):
    """Base class: ``code`` is stable and machine-readable, ``status`` the HTTP status."""

    code = "error"
    status = 500

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotFound(IncidentsError):
    code = "not_found"
    status = 404


class VersionMismatch(IncidentsError):
    """The ``If-Match`` version is not the incident's current one (``current`` says which)."""

    code = "version_mismatch"
    status = 412

    def __init__(self, incident_id: str, expected: int, current: int) -> None:
        self.incident_id = incident_id
        self.expected = expected
        self.current = current
        super().__init__(f"incident {incident_id} is at version {current}, not {expected}")


class InvalidTransition(IncidentsError):
    """The state machine does not allow the action; ``allowed`` lists what it does allow."""

    code = "invalid_transition"
    status = 409

    def __init__(self, message: str, current: str, allowed: Iterable[str]) -> None:
        self.current = current
        self.allowed = tuple(allowed)
        super().__init__(message)


class InvalidRequest(IncidentsError):
    """The request is well-formed JSON but its values are unusable (unknown crew, point…)."""

    code = "invalid_request"
    status = 422
