#!/usr/bin/env bash
# Runs the verify_bytes and line_analyzer fuzz targets one after the other.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 600
#   TARGET              default: verify_bytes line_analyzer
#
# Seeds are read from fuzz/corpus/<target>/ and left unchanged; new inputs go
# to fuzz/corpus-run/<target>/, which git ignores and later runs reuse.
# A crash leaves its input under fuzz/artifacts/<target>/; copy it to
# fuzz/regressions/<target>/ to keep it with the repository.
# Needs cargo-fuzz, which this script installs with `cargo install` when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
# Non-login shells (CI, cron) often lack the PATH entry that rustup adds to ~/.profile.
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
repo=$(pwd)

seconds=${1:-600}
shift || true
targets=("$@")
((${#targets[@]} > 0)) || targets=(verify_bytes line_analyzer)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz not found; installing it from crates.io"
    cargo install cargo-fuzz --locked
fi

status=0
for target in "${targets[@]}"; do
    echo "fuzz: running $target for ${seconds}s"
    mkdir -p "$repo/fuzz/corpus-run/$target"
    # RUSTC_BOOTSTRAP lets the stable compiler accept the sanitizer flags cargo-fuzz passes.
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir "$repo/fuzz" "$target" \
        "$repo/fuzz/corpus-run/$target" "$repo/fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        echo "fuzz: $target FAILED; the crashing input is under fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
