#!/usr/bin/env bash
# The test command: bring up PostgreSQL and Kafka, then run the whole suite against them.
# Extra arguments go to pytest (e.g. `bash deploy/local/test.sh -k bus`).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/../.."
eval "$(bash "$HERE/up.sh" | sed 's/^/export /')"
exec python3 -m pytest -q tests "$@"
