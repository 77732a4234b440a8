#!/usr/bin/env bash
# Installs what is missing, then runs the sealdesk demo from a release build.
# Arguments are passed on to `sealdesk demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release -- demo "$@"
