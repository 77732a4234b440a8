#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy, a build without the TPM
# feature, all tests, and a short fuzz run of each fuzz target.
# Exits non-zero when any step fails; every step runs even after a failure,
# and a summary of steps and test results is printed last.
#
# Environment:
#   FUZZ_SMOKE_SECONDS  seconds per fuzz target (default 45; 0 skips fuzzing)
set -euo pipefail

cd "$(dirname "$0")/.."
# Non-login shells (CI, cron) often lack the PATH entry that rustup adds to ~/.profile.
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
repo=$(pwd)

bash scripts/setup.sh
for component in fmt clippy; do
    if ! cargo "$component" --version >/dev/null 2>&1; then
        echo "test: error: cargo $component not found; install it with: rustup component add ${component/fmt/rustfmt}" >&2
        exit 1
    fi
done

fuzz_seconds=${FUZZ_SMOKE_SECONDS:-45}
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/sealdesk-test.XXXXXX")
trap 'rm -rf "$log_dir"' EXIT

step_names=()
step_results=()
failed=0

# Runs one named step, records its result and its duration, and keeps going on failure.
run_step() {
    local name=$1
    shift
    local started=$SECONDS
    echo
    echo "==> $name: $*"
    if "$@"; then
        step_results+=("ok      $((SECONDS - started))s")
    else
        step_results+=("FAILED  $((SECONDS - started))s (exit $?)")
        failed=1
    fi
    step_names+=("$name")
}

# Runs cargo test with its output also saved, so the summary can repeat the results.
cargo_test() {
    local log=$1
    shift
    cargo test "$@" 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}

# Installs cargo-fuzz when missing and runs each fuzz target for fuzz_seconds.
# New inputs go to a scratch corpus, so the committed seeds stay unchanged.
fuzz_smoke() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "cargo-fuzz not found; installing it from crates.io (up to 15 minutes)"
        if ! timeout 900 cargo install cargo-fuzz --locked; then
            echo "SKIPPED: cargo-fuzz could not be installed; run scripts/fuzz.sh by hand"
            return 0
        fi
    fi
    local target scratch
    for target in verify_bytes line_analyzer; do
        scratch="$log_dir/corpus-$target"
        mkdir -p "$scratch"
        # RUSTC_BOOTSTRAP lets the stable compiler accept the sanitizer flags cargo-fuzz passes.
        RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir "$repo/fuzz" "$target" \
            "$scratch" "$repo/fuzz/corpus/$target" -- \
            -max_total_time="$fuzz_seconds" -print_final_stats=1 || return 1
    done
}

run_step "rustfmt" cargo fmt --check
run_step "rustfmt (fuzz)" cargo fmt --check --manifest-path fuzz/Cargo.toml
run_step "clippy" cargo clippy --all-targets -- -D warnings
run_step "build without default features" cargo build --no-default-features
run_step "tests without default features" cargo_test "$log_dir/test-no-default.log" --no-default-features --lib
run_step "tests" cargo_test "$log_dir/test.log" --all-targets
if [[ $fuzz_seconds == 0 ]]; then
    echo "fuzz smoke run skipped: FUZZ_SMOKE_SECONDS=0"
else
    run_step "fuzz smoke run (${fuzz_seconds}s per target)" fuzz_smoke
fi

echo
echo "==> summary"
for i in "${!step_names[@]}"; do
    printf '  %-44s %s\n' "${step_names[$i]}" "${step_results[$i]}"
done
for log in "$log_dir/test-no-default.log" "$log_dir/test.log"; do
    if [[ -f $log ]]; then
        echo
        echo "cargo test $([[ $log == *no-default* ]] && echo '--no-default-features --lib' || echo '--all-targets'):"
        grep -E '^(test result:|failures:|    [a-z_:0-9]+$|error)' "$log" || true
        awk '/^test result:/ { pass += $4; fail += $6; ignored += $8 }
             END { printf "  total: %d passed, %d failed, %d ignored\n", pass, fail, ignored }' "$log"
    fi
done
echo
if ((failed)); then
    echo "RESULT: FAILED"
    exit 1
fi
echo "RESULT: all steps passed"
