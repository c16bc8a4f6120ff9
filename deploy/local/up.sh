#!/usr/bin/env bash
# Start the local PostgreSQL and Kafka broker (idempotent) and print their settings.
# Fails if either does not come up.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/postgres.sh" start >/dev/null
bash "$HERE/kafka.sh" start >/dev/null
bash "$HERE/postgres.sh" env
bash "$HERE/kafka.sh" env
