#!/usr/bin/env bash
# Stop the local Kafka broker and PostgreSQL started by up.sh (only those processes).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
bash "$HERE/kafka.sh" stop || status=$?
bash "$HERE/postgres.sh" stop || status=$?
exit "$status"
