"""Entity tags of incidents: ``"<id>-<version>"`` (strong), and the If-Match check on writes.

A write without If-Match is 428; one naming another version is 412 (answered by the
handler's version check inside the transaction, so two writers racing get exactly one 412).
"""

from __future__ import annotations

from services.incidents.api.problems import ApiProblem


def etag_for(incident_id: str, version: int) -> str:
    """The ETag header value of ``incident_id`` at ``version``."""
    return f'"{incident_id}-{version}"'


def parse_if_match(value: str | None, incident_id: str) -> int:
    """The version an If-Match header names for ``incident_id``.

    Accepts our ETag (strong or weakened by a proxy, ``W/"…"``) or a bare version number.
    Raises 428 when missing or ``*`` and 412 when it names another incident.
    """
    if value is None or not value.strip():
        raise ApiProblem(
            428, "precondition_required", "If-Match with the incident's ETag is required"
        )
    tags = [t.strip() for t in value.split(",") if t.strip()]
    if len(tags) != 1 or tags[0] == "*":
        raise ApiProblem(428, "precondition_required", "If-Match must name exactly one version")
    tag = tags[0].removeprefix("W/").strip('"')
    if tag.isdigit():
        return int(tag)
    prefix, sep, version = tag.rpartition("-")
    if not sep or not version.isdigit():
        raise ApiProblem(412, "version_mismatch", f"If-Match {value!r} is not an ETag of this API")
    if prefix != incident_id:
        raise ApiProblem(412, "version_mismatch", f"If-Match names incident {prefix!r}")
    return int(version)
