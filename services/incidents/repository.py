"""Every query of the incidents service, in one import: the correlator's state
(``state_store``) and the read side for the API, lookup and export (``incident_queries``)."""

from __future__ import annotations

from services.incidents.incident_queries import (
    IncidentDetail,
    IncidentFilters,
    Page,
    affected_customers,
    decode_cursor,
    encode_cursor,
    etr_history,
    export_incidents,
    find_customer,
    get_incident,
    incident_timeline,
    incident_version,
    list_incidents,
)
from services.incidents.state_store import (
    FeederVersion,
    IncidentMeta,
    LoadedFeeder,
    bump_feeder,
    due_feeders,
    earliest_wake,
    incident_from_row,
    load_feeder,
    load_incidents,
    lock_feeder,
    mark_processed,
    processed_ids,
    save_customers,
    save_devices,
    save_incidents,
)

__all__ = [
    "FeederVersion", "IncidentDetail", "IncidentFilters", "IncidentMeta", "LoadedFeeder", "Page",
    "affected_customers", "bump_feeder", "decode_cursor", "due_feeders", "earliest_wake",
    "encode_cursor", "etr_history", "export_incidents", "find_customer", "get_incident",
    "incident_from_row", "incident_timeline", "incident_version", "list_incidents",
    "load_feeder", "load_incidents", "lock_feeder", "mark_processed", "processed_ids",
    "save_customers", "save_devices", "save_incidents",
]  # fmt: skip
