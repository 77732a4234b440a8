#!/usr/bin/env python3
"""Measures the interactive view on a large chain, driven through tmux.

Usage: scripts/bench_tui.py CHAIN_DIR [SEALDESK_BINARY]

CHAIN_DIR holds decisions_sealed.jsonl written by the Go reference with the
development key (scripts/bench.sh leaves one in /tmp/sealdesk-bench). The
script works on a copy, so the original stays untouched. It reports:
- first screen: time from start until the table shows an entry row;
- full verification: time until the progress indicator is gone and a
  verdict is shown, and the time the view's worker logged for it, next to
  the median of `sealdesk verify` on the same copy in the same run;
- peak RSS of the view (VmHWM) at the end, after the appends;
- append latency: time from appending one sealed line to the moment the
  view shows that entry, for several appends;
- key response during verification: time from a key press (G, then g) to the
  screen change, sampled while the first verification runs.
"""

import glob
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DEV_KEY = b"sentinel-dev-key-not-for-production"
SESSION = "sealdesk-bench-tui"


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-p", "-t", SESSION).stdout


def wait_for(predicate, timeout=120.0, step=0.002):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        text = screen()
        if predicate(text):
            return time.monotonic() - start, text
        time.sleep(step)
    raise TimeoutError("the screen never matched")


def sealed_line(prev):
    """A software-mode line sealed after `prev` (a parsed line) as the reference would."""
    now_ns = time.time_ns()
    entry = (
        '{"id":"DEC-%d","timestamp":"%s","action":"respond","decision":"escalate",'
        '"reason":"bench append","previous_hash":"%s"}'
    ) % (
        now_ns,
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ns // 10**9))
        + (".%09d" % (now_ns % 10**9)).rstrip("0").rstrip(".")
        + "Z",
        prev["hash"],
    )
    digest = hashlib.sha256(entry.encode()).digest()
    signature = hmac.new(DEV_KEY, digest, "sha256").hexdigest()
    pcr = hashlib.sha256(bytes.fromhex(prev["pcr_value"]) + digest).hexdigest()
    line = (
        '{"entry":%s,"hash":"%s","signature":"%s","pcr_value":"%s","seal_mode":"software","chain_idx":%d}\n'
        % (entry, digest.hex(), signature, pcr, prev["chain_idx"] + 1)
    )
    return line, "DEC-%d" % now_ns, json.loads(line)


def last_line(path):
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 65536))
        return json.loads(f.read().splitlines()[-1])


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
    return 0


def logged_verify_ms(state_dir):
    """Return the whole-file verification time the view's worker logged, in ms."""
    for path in glob.glob(os.path.join(state_dir, "**", "sealdesk.log*"), recursive=True):
        with open(path, errors="replace") as f:
            for row in f:
                if "verified the whole file" in row and "verify_ms=" in row:
                    return int(row.split("verify_ms=")[1].split()[0])
    return None


def cli_verify_seconds(binary, chain, runs):
    """Return the median wall time of `sealdesk verify` on the chain."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([binary, "verify", chain, "--format", "json"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    source = os.path.join(sys.argv[1], "decisions_sealed.jsonl")
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/sealdesk"
    work = tempfile.mkdtemp(prefix="sealdesk-bench-tui.")
    chain = os.path.join(work, "decisions_sealed.jsonl")
    shutil.copyfile(source, chain)
    size = os.path.getsize(chain)
    # Warm the page cache, as the verify benchmark does.
    subprocess.run(["cat", chain], stdout=subprocess.DEVNULL, check=True)
    runs = int(os.environ.get("RUNS", "3"))
    cli_seconds = cli_verify_seconds(binary, chain, runs)
    state_dir = os.path.join(work, "state")
    os.makedirs(state_dir)

    tmux("kill-session", "-t", SESSION)
    started = time.monotonic()
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40",
         f"env XDG_STATE_HOME={state_dir} {binary} {chain}; sleep 1")
    pid = int(tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").stdout.strip())
    # The pane runs a shell; the view is its child.
    time.sleep(0.05)
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    view_pid = int(children[0]) if children else pid

    first, _ = wait_for(lambda t: "respond" in t or "ingest" in t or "correlate" in t or "playbook" in t)
    first_screen = time.monotonic() - started

    # Key response while the first verification runs.
    key_times = []
    for key in ["g", "G", "g", "G"]:
        before = screen()
        pressed = time.monotonic()
        tmux("send-keys", "-t", SESSION, key)
        try:
            wait_for(lambda t: t != before, timeout=2.0, step=0.001)
            key_times.append(time.monotonic() - pressed)
        except TimeoutError:
            key_times.append(float("nan"))

    # Coarser polling here: each capture starts a tmux client, and polling
    # every few milliseconds would take CPU time from the view it measures.
    wait_for(lambda t: "VALID" in t and "%" not in t.splitlines()[0], timeout=300, step=0.02)
    verified = time.monotonic() - started

    append_times = []
    prev = last_line(chain)
    for _ in range(10):
        line, entry_id, prev = sealed_line(prev)
        with open(chain, "a") as f:
            written = time.monotonic()
            f.write(line)
        seconds, _ = wait_for(lambda t, i=entry_id: i[-8:] in t, timeout=10, step=0.001)
        append_times.append(time.monotonic() - written)
        time.sleep(0.2)

    peak_kb = vm_hwm_kb(view_pid)
    tmux("send-keys", "-t", SESSION, "q")
    time.sleep(0.5)
    tmux("kill-session", "-t", SESSION)
    logged_ms = logged_verify_ms(state_dir)
    shutil.rmtree(work, ignore_errors=True)

    print(f"chain: {size / 1e6:.1f} MB")
    print(f"first screen: {first_screen * 1000:.0f} ms")
    print(f"`sealdesk verify` on the same copy: {cli_seconds:.2f} s (median of {runs})")
    print(f"full verification in the view: {verified:.2f} s on screen from start "
          f"({verified / cli_seconds:.2f}x `sealdesk verify`)")
    if logged_ms is not None:
        print(f"  as logged by the view's worker: {logged_ms / 1000:.2f} s "
              f"({logged_ms / 1000 / cli_seconds:.2f}x `sealdesk verify`)")
    print(f"peak RSS of the view: {peak_kb / 1024:.1f} MiB ({peak_kb * 1024 / size:.3f} of the file size)")
    print("append shown and verified: median %.0f ms, max %.0f ms over %d appends (%s)"
          % (statistics.median(append_times) * 1000, max(append_times) * 1000, len(append_times),
             ", ".join(f"{t * 1000:.0f}" for t in append_times)))
    print("key response during verification: " + ", ".join(f"{k * 1000:.0f} ms" for k in key_times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
