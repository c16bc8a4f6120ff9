"""Keep the garbage collector's full passes short in a process serving the API.

CPython's oldest-generation collection walks every tracked object the process holds; after
start-up that is the ~180,000 objects of the imported modules (FastAPI, pydantic, SQLAlchemy,
asyncpg...) plus whatever the service loaded (the topology). Under steady API traffic such a
pass ran about every 7 s and stalled the event loop for tens of milliseconds each time, and
every request due during the stall waited it out: the API benchmark's p99 was those stalls.
Objects alive once start-up is done live as long as the process, so they are moved out of the
collector's view (``gc.freeze``); later passes only walk what was allocated since.
"""

from __future__ import annotations

import gc


def settle_after_startup() -> None:
    """Collect once, then freeze every surviving object (call when start-up work is done:
    app built, topology loaded). Objects frozen are still freed by reference counting;
    only a reference cycle among them that later becomes garbage stays in memory, which
    long-lived start-up state (modules, app, topology) hardly produces."""
    gc.collect()
    gc.freeze()
