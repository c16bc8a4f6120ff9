"""Shared SQLAlchemy conventions: one MetaData per PostgreSQL schema, one naming convention.

Each service declares its tables on ``metadata_for("<its schema>")`` (schemas: ``topology``,
``ingest``, ``incidents``, ``notify``). On SQLite each schema is an attached database (see
``services.common.db``), so schema-qualified names work on both engines.
"""

from __future__ import annotations

from sqlalchemy import MetaData

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SCHEMAS: tuple[str, ...] = ("topology", "ingest", "incidents", "notify")


def metadata_for(schema: str) -> MetaData:
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}; expected one of {SCHEMAS}")
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
