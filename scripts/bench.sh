#!/usr/bin/env bash
# Benchmarks `sealdesk verify` against `openssl dgst -sha256` and the Go
# reference verifier on one generated chain, and prints a markdown table.
#
# Environment:
#   N           entries in the benchmark chain (default 1000000)
#   RUNS        timed runs per tool; the table shows the median (default 5)
#   BENCH_DIR   cache for the reference build and the chain (default /tmp/sealdesk-bench)
#   SHARED_DIR  folder with sec006/reference (default: ../shared beside the repository)
set -euo pipefail

cd "$(dirname "$0")/.."
# Non-login shells (CI, cron) often lack the PATH entry that rustup adds to ~/.profile.
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
repo=$(pwd)

n=${N:-1000000}
runs=${RUNS:-5}
bench_dir=${BENCH_DIR:-/tmp/sealdesk-bench}
shared_dir=${SHARED_DIR:-$repo/../shared}
reference_src="$shared_dir/sec006/reference"
baseline_bytes=$((64 * 1024 * 1024))

bash scripts/setup.sh

# hyperfine, GNU time and openssl are needed only here.
bench_packages=()
for package in hyperfine time openssl; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
        bench_packages+=("$package")
    fi
done
if ((${#bench_packages[@]} > 0)); then
    echo "bench: installing ${bench_packages[*]}"
    as_root=()
    [[ $(id -u) -eq 0 ]] || as_root=(sudo)
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${bench_packages[@]}"
fi

if [[ ! -d $reference_src ]]; then
    echo "bench: error: reference sources not found at $reference_src; set SHARED_DIR" >&2
    exit 1
fi

mkdir -p "$bench_dir"
echo "bench: building the Go reference into $bench_dir/bin"
(cd "$reference_src" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$bench_dir/bin/" ./cmd/...)
reference_verify="$bench_dir/bin/verify"

echo "bench: building sealdesk --release"
cargo build --release --quiet
sealdesk="${CARGO_TARGET_DIR:-$repo/target}/release/sealdesk"

# The chain is generated once per N and reused; the marker file is written
# only after bigchain succeeds, so an interrupted run is never reused.
chain_dir="$bench_dir/chain-$n"
chain_file="$chain_dir/decisions_sealed.jsonl"
if [[ ! -f $chain_dir/.complete ]]; then
    echo "bench: generating a $n-entry chain in $chain_dir"
    rm -rf "$chain_dir"
    "$bench_dir/bin/bigchain" -dir "$chain_dir" -n "$n"
    touch "$chain_dir/.complete"
else
    echo "bench: reusing $chain_dir"
fi
chain_bytes=$(stat -c %s "$chain_file")

# Prints a field of the first result in a hyperfine JSON export.
json_field() {
    grep -o "\"$2\": *[0-9.e+-]*" "$1" | head -1 | sed 's/.*: *//'
}

# Times RUNS runs of a shell command and prints "MEDIAN_WALL MEAN_CPU" in
# seconds, where CPU is user plus system time of the command and its threads.
time_command() {
    local command=$1
    local export="$bench_dir/hyperfine.json"
    if command -v hyperfine >/dev/null; then
        hyperfine --style basic --warmup 1 --runs "$runs" --ignore-failure \
            --export-json "$export" "$command" >&2
        echo "$(json_field "$export" median) $(awk -v u="$(json_field "$export" user)" -v s="$(json_field "$export" system)" 'BEGIN { print u + s }')"
    else
        local times=() start end
        for ((i = 0; i < runs; i++)); do
            start=$(date +%s.%N)
            bash -c "$command" >/dev/null 2>&1 || true
            end=$(date +%s.%N)
            times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")
        done
        # Without hyperfine the CPU time is not measured and is printed as 0.
        printf '%s\n' "${times[@]}" | sort -g |
            awk '{ v[NR] = $1 } END { print ((NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), 0 }'
    fi
}

# Prints the peak RSS in kilobytes of one run of a shell command.
peak_rss_kb() {
    /usr/bin/time -v bash -c "exec $1" 2>"$bench_dir/time.txt" >/dev/null || true
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$bench_dir/time.txt"
}

openssl_command="openssl dgst -sha256 '$chain_file' >/dev/null"
reference_command="'$reference_verify' '$chain_dir' >/dev/null 2>&1"
sealdesk_command="'$sealdesk' verify '$chain_dir' --format json >/dev/null"

# One untimed run of each verifier shows its verdict and the reference's phase split.
echo "bench: checking verdicts"
"$reference_verify" "$chain_dir" >"$bench_dir/reference.out" 2>"$bench_dir/reference.err" && reference_exit=0 || reference_exit=$?
"$sealdesk" verify "$chain_dir" --format json >"$bench_dir/sealdesk.json" 2>"$bench_dir/sealdesk.err" && sealdesk_exit=0 || sealdesk_exit=$?
reference_load=$(awk '/^load:/ { print $2 }' "$bench_dir/reference.err")
reference_verify_phase=$(awk '/^verify:/ { print $2 }' "$bench_dir/reference.err")

echo "bench: timing openssl"
read -r openssl_time openssl_cpu < <(time_command "$openssl_command")
echo "bench: timing the reference"
read -r reference_time reference_cpu < <(time_command "$reference_command")
echo "bench: timing sealdesk"
read -r sealdesk_time sealdesk_cpu < <(time_command "$sealdesk_command")

openssl_rss=$(peak_rss_kb "openssl dgst -sha256 '$chain_file'")
reference_rss=$(peak_rss_kb "'$reference_verify' '$chain_dir'")
sealdesk_rss=$(peak_rss_kb "'$sealdesk' verify '$chain_dir' --format json")

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
sha_ni=$(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)
mem_total=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)

awk -v n="$n" -v bytes="$chain_bytes" -v runs="$runs" \
    -v ot="$openssl_time" -v rt="$reference_time" -v st="$sealdesk_time" \
    -v oc="$openssl_cpu" -v rc="$reference_cpu" -v sc="$sealdesk_cpu" \
    -v orss="$openssl_rss" -v rrss="$reference_rss" -v srss="$sealdesk_rss" \
    -v base="$baseline_bytes" -v rload="$reference_load" -v rverify="$reference_verify_phase" \
    -v rexit="$reference_exit" -v sexit="$sealdesk_exit" '
function mib(kilobytes) { return sprintf("%.1f MiB", kilobytes / 1024) }
function ratio(a, b) { return (a > 0 && b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
BEGIN {
    printf "Chain: %d entries, %.1f MB. Wall time is the median of %d runs after one warm-up run (file in page cache); CPU time is the mean user + system time.\n\n", n, bytes / 1e6, runs
    print "| tool | wall time | CPU time | peak RSS | wall vs openssl | wall vs reference | CPU vs openssl | CPU vs reference | throughput (wall) |"
    print "|---|---|---|---|---|---|---|---|---|"
    printf "| `openssl dgst -sha256` | %.3f s | %.3f s | %s | 1.00x | %.3fx | 1.00x | %s | %.0f MB/s |\n", ot, oc, mib(orss), ot / rt, ratio(oc, rc), bytes / ot / 1e6
    printf "| reference `verify` (load %s s + verify %s s) | %.3f s | %.3f s | %s | %.2fx | 1.00x | %s | 1.00x | %.0f MB/s |\n", rload, rverify, rt, rc, mib(rrss), rt / ot, ratio(rc, oc), bytes / rt / 1e6
    printf "| `sealdesk verify --format json` | %.3f s | %.3f s | %s | %.2fx | %.3fx (%.1fx faster) | %s | %s (%s less CPU) | %.0f MB/s |\n", st, sc, mib(srss), st / ot, st / rt, rt / st, ratio(sc, oc), ratio(sc, rc), ratio(rc, sc), bytes / st / 1e6
    above = srss * 1024 - base
    if (above > 0)
        printf "\nsealdesk peak RSS above the 64 MiB baseline: %.1f bytes per entry (%d bytes in total).\n", above / n, above
    else
        printf "\nsealdesk peak RSS above the 64 MiB baseline: none, the peak is under the baseline.\n"
    printf "Exit codes: reference %s, sealdesk %s.\n", rexit, sexit
    print ""
    printf "Targets: sealdesk >= 10x faster than the reference: %s (%.1fx). ", (rt / st >= 10 ? "met" : "NOT met"), rt / st
    printf "Within 2.5x of openssl: %s (%.2fx). ", (st / ot <= 2.5 ? "met" : "NOT met"), st / ot
    printf "Peak RSS <= 64 MiB: %s (%s).\n", (srss * 1024 <= base ? "met" : "NOT met"), mib(srss)
}' | tee "$bench_dir/table.md"

cat <<FACTS

Machine: $(nproc) CPUs, $cpu_model, sha_ni: $sha_ni, $mem_total RAM, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg).
Versions: $(rustc --version), $(go version | cut -d' ' -f3), $(openssl version | cut -d' ' -f1-2), $(hyperfine --version 2>/dev/null || echo 'no hyperfine').
Date: $(date -u '+%Y-%m-%d %H:%M UTC').
FACTS
