#!/usr/bin/env bash
# Installs what sealdesk needs to build, test and run its demo on Debian 12.
# Idempotent: installs only missing Debian packages and changes nothing else.
# Environment variables set here stay in this script's process.
set -euo pipefail

packages=(swtpm swtpm-tools tpm2-tools libtss2-dev pkg-config golang-go tmux build-essential)

# Returns success when the Debian package is installed.
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for package in "${packages[@]}"; do
    if ! is_installed "$package"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "setup: installing missing Debian packages: ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        echo "setup: error: not root and sudo not found; install as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "setup: Debian packages present: ${packages[*]}"
fi

# Rust comes from rustup, which this script does not download. The calling
# scripts add ~/.cargo/bin to their own PATH, and so does this check.
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    echo "setup: error: cargo not found on PATH or in $HOME/.cargo/bin; install Rust 1.85 or newer with rustup (https://rustup.rs)" >&2
    exit 1
fi
echo "setup: $(cargo --version)"
