#!/usr/bin/env bash
# The sandbox's container image (Containerfile), built and run with podman on a machine that reaches no image
# registry: the base is made from Debian's packages with mmdebstrap instead of pulled, and kept as
# localhost/sandbox-base:bookworm. Elsewhere, `docker build -f Containerfile .` builds the same file on
# python:3.12-slim.
#
#   bash scripts/container.sh build          the base (once), then localhost/redemption-sandbox:latest
#   bash scripts/container.sh run [OPTION]   build, then serve in the foreground (Ctrl-C stops it): port
#                                            SANDBOX_PORT (8080), admin token SANDBOX_ADMIN_TOKEN (required), state
#                                            in the volume SANDBOX_VOLUME (sandbox-data); OPTIONs go to the sandbox
#   bash scripts/container.sh podman ARG...  podman as this script runs it (what tests/test_container.py uses)
#
# Installs what it needs from Debian's packages when missing (podman, runc, mmdebstrap), as
# scripts/install-services.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=localhost/redemption-sandbox:latest
BASE=localhost/sandbox-base:bookworm
SUITE=bookworm

install_missing() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

scratch=()  # files removed on exit
trap 'rm -f "${scratch[@]}"' EXIT

# Some machines refuse the open-files limit podman gives a root container by default (runc: "error setting
# rlimit type 7"): none is given, and the container keeps the limits podman itself has. A configuration of the
# caller's own is kept.
if [ -z "${CONTAINERS_CONF:-}" ]; then
    CONTAINERS_CONF=$(mktemp)
    scratch+=("$CONTAINERS_CONF")
    printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
    export CONTAINERS_CONF
fi

# runc and cgroupfs, named so that every machine runs containers the way the ones without systemd (CI's) do.
podman_() {
    podman --runtime runc --cgroup-manager=cgroupfs "$@"
}

# A pip setting of this machine: its PIP_* variable, else pip's configuration, else nothing.
pip_setting() {
    local variable="PIP_${1^^}"
    variable=${variable//-/_}
    if [ -n "${!variable:-}" ]; then
        printf '%s' "${!variable}"
    else
        python3 -m pip config get "global.$1" 2>/dev/null || true
    fi
}

build_base() {
    podman_ image exists "$BASE" && return
    # Through a file, not a pipe: a tarball cut short by a failure is never imported, and so never taken for the
    # cached base by the next run.
    local tarball
    tarball=$(mktemp --tmpdir="${TMPDIR:-/var/tmp}" sandbox-base.XXXXXX.tar)
    scratch+=("$tarball")
    # minbase: dpkg, apt and what is essential, plus Python and its venv module; no documentation (the copyright
    # files kept), and the suite's updates and security fixes.
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        "$SUITE" "$tarball" "deb http://deb.debian.org/debian $SUITE main" \
        "deb http://deb.debian.org/debian $SUITE-updates main" \
        "deb http://deb.debian.org/debian-security $SUITE-security main"
    podman_ import "$tarball" "$BASE" >/dev/null
    rm -f "$tarball"
}

build_image() {
    # The index settings this machine's pip uses reach the package index from inside the build too (the build
    # shares the host's network); file: URLs and find-links name this machine's disk and are left out.
    local build_args=() name value variable url kept
    for name in index-url extra-index-url trusted-host default-timeout; do
        value=$(pip_setting "$name")
        if [[ $name == *index-url ]]; then
            kept=()
            for url in $value; do
                [[ $url == http://* || $url == https://* ]] && kept+=("$url")
            done
            value="${kept[*]}"
        fi
        if [ -n "$value" ]; then
            variable="PIP_${name^^}"
            build_args+=(--build-arg "${variable//-/_}=$value")
        fi
    done
    # The CA bundle pip trusts here (a proxy's own CA among them) is lent to the build as a secret: pip inside
    # trusts the same, and the bundle stays out of the image's layers.
    local cert
    cert=$(pip_setting cert)
    if [ -n "$cert" ] && [ -f "$cert" ]; then
        build_args+=(--secret "id=pip-cert,src=$cert")
    fi
    # The docker format keeps the HEALTHCHECK (the OCI format has no place for it).
    podman_ build --network=host --format docker --build-arg "BASE=$BASE" "${build_args[@]}" \
        --file Containerfile --tag "$IMAGE" .
}

run_image() {
    : "${SANDBOX_ADMIN_TOKEN:?set SANDBOX_ADMIN_TOKEN: the control API (/_sandbox) asks for it beyond loopback}"
    # From a terminal, Ctrl-C goes through the container's own terminal to every server process at once, and they
    # stop in a second; a signal that podman passes on reaches process 1 alone.
    local terminal=()
    [ -t 0 ] && terminal=(--interactive --tty)
    podman_ run --rm "${terminal[@]}" --name redemption-sandbox --publish "${SANDBOX_PORT:-8080}:8080" \
        --env SANDBOX_ADMIN_TOKEN --volume "${SANDBOX_VOLUME:-sandbox-data}:/data" "$IMAGE" "$@"
}

case "${1:-}" in
    build)
        install_missing
        build_base
        build_image
        ;;
    run)
        shift
        install_missing
        build_base
        build_image
        run_image "$@"
        ;;
    podman)
        shift
        podman_ "$@"
        ;;
    *)
        echo "usage: bash scripts/container.sh build | run [SANDBOX-OPTION...] | podman ARG..." >&2
        exit 2
        ;;
esac
