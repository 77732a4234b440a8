#!/usr/bin/env bash
# Installs what is missing, then runs the sealdesk demo from a release build.
# Arguments are passed on to `sealdesk demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Non-login shells (CI, cron) often lack the PATH entry that rustup adds to ~/.profile.
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
bash scripts/setup.sh
exec cargo run --release -- demo "$@"
