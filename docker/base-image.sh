#!/usr/bin/env bash
# Make the local base images the Dockerfile builds on where no image registry is reachable:
# one debootstrap of Debian bookworm (python3 is 3.11 there), imported twice into podman:
#   localhost/oms-base:bookworm        runtime: python3 and venv
#   localhost/oms-build-base:bookworm  build:   the runtime plus a C compiler and Python headers
# Skips when both images exist.  Usage: docker/base-image.sh   (as root; needs debootstrap)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=docker/podman-env.sh
source "$here/podman-env.sh"

runtime_image="$OMS_BASE_IMAGE"
build_image="$OMS_BUILD_BASE_IMAGE"
# the mirror apt already uses on this machine (deb822 or one-line sources)
mirror="${OMS_DEBIAN_MIRROR:-$(grep -rhE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?$' | head -n1 || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"

if podman image exists "$runtime_image" && podman image exists "$build_image"; then
    exit 0
fi

root="$(mktemp -d /var/tmp/oms-base.XXXXXX)"
# --one-file-system: never into a mount debootstrap may have left (proc, sys)
trap 'rm -rf --one-file-system "$root" "$root.log"' EXIT

debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# trust what this machine trusts (its local CAs, e.g. of an intercepting proxy in front of
# the package index); certificates are public, nothing secret goes into the image
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
# smaller layers: no package lists or caches in the image
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" --one-file-system -c . | podman import -q - "$runtime_image" >/dev/null

# the build base: the same tree with the compiler and zmq.h the Cython extensions need
# (apt in a chroot has no _apt user sandbox and no pty)
apt=(chroot "$root" apt-get -qq -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0)
{ "${apt[@]}" update \
  && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends \
        build-essential python3-dev libzmq3-dev \
  && "${apt[@]}" clean; } >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
rm -rf "$root"/var/lib/apt/lists/*
tar -C "$root" --one-file-system -c . | podman import -q - "$build_image" >/dev/null
