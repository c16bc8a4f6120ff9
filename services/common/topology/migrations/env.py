"""Alembic environment of schema ``topology`` (applied by ``outagedesk migrate``).

To add a migration, copy the pattern of the newest file in ``versions/``: name the new
file ``versions/<YYYYMMDD>_<slug>.py``, give it ``revision = "topology_<next number>"``
and ``down_revision`` = the previous revision, pass ``schema=SCHEMA`` to every ``op.*``
call, and write a ``downgrade()`` that undoes ``upgrade()`` exactly. The test in
``tests/integration/common/test_common_migrations.py`` upgrades and downgrades every
schema on PostgreSQL and SQLite. No alembic.ini is needed (see services/common/migrate.py).
"""

from services.common.migration_env import run_env
from services.common.topology.orm import metadata

run_env("topology", target_metadata=metadata)
