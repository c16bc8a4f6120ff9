#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine (idempotent):
# Java + Maven (Kafka broker jars), PostgreSQL, headless Chromium with a CJK font (report
# screenshots), and the project itself with its test extra.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/../.."
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei" || missing+=(fonts-wqy-microhei)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q -e '.[test]'
