#!/usr/bin/env bash
# Build the flows' image where no image registry or package index is reachable from the build
# (CI here, a laptop behind a proxy); `make image` and the `containers` tests call it.
#   1. the base image: when DRIFTLOOP_BASE_IMAGE is not in the engine's store and is the local
#      default, a debootstrap'ed Debian (this host's codename, the mirror from this host's apt
#      sources) with python3 + venv, imported once (`<engine> import`); any other name is left to
#      the build to pull (e.g. python:3.11-slim where a registry is reachable);
#   2. the wheelhouse (.wheelhouse/): every pinned dependency as a wheel for the base image's
#      Python, filled here with pip (`pip wheel` builds any sdist, `pip download --python-version`
#      adds what that Python's markers want); skipped when the requirements, the constraints
#      and the base's Python did not change;
#   3. `<engine> build -f Containerfile --build-arg BASE_IMAGE=...`: no index, no registry.
# Environment: ENGINE (docker when its engine answers, else podman), DRIFTLOOP_BASE_IMAGE
# (localhost/driftloop-base:<codename>), DRIFTLOOP_IMAGE (localhost/driftloop:dev), PYTHON
# (python3, with pip). debootstrap needs root (debian-packages.txt: podman, runc, debootstrap).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${ENGINE:-}" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then ENGINE=docker
    elif command -v podman >/dev/null 2>&1; then ENGINE=podman
    else echo "build-local: neither a docker engine nor podman is here (make system-deps installs podman)" >&2; exit 1
    fi
fi
PYTHON=${PYTHON:-python3}
CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
LOCAL_BASE=localhost/driftloop-base:$CODENAME
BASE_IMAGE=${DRIFTLOOP_BASE_IMAGE:-$LOCAL_BASE}
IMAGE=${DRIFTLOOP_IMAGE:-localhost/driftloop:dev}
WHEELHOUSE=.wheelhouse
# podman here: containers (and build steps) start only with runc and these limits
RUN_OPTS=()
[ "$ENGINE" = podman ] && RUN_OPTS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
say() { echo "build-local: $*" >&2; }

# The first mirror in this host's apt sources that serves $CODENAME itself (not -security).
apt_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v suite="$CODENAME" '
            /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (uri != "" && ok) print uri }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk -v suite="$CODENAME" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == suite) { print $(i-1); exit } }' "$f"
    done
}

if "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $BASE_IMAGE is there: no debootstrap"
elif [ "$BASE_IMAGE" = "$LOCAL_BASE" ]; then
    mirror=$(apt_mirror | grep -v '^\[' | head -n 1)
    [ -n "$mirror" ] || { say "no apt mirror for $CODENAME in /etc/apt/sources*: set DRIFTLOOP_BASE_IMAGE to an image with python3 >= 3.11"; exit 1; }
    command -v debootstrap >/dev/null || { say "debootstrap is missing: make system-deps"; exit 1; }
    rootfs=$(mktemp -d /var/tmp/driftloop-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
    say "debootstrap $CODENAME from the host's apt mirror (a few minutes, once)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$CODENAME" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar -C "$rootfs" -c . | "$ENGINE" import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    say "imported $BASE_IMAGE"
fi

if "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    pyver=$("$ENGINE" run --rm "${RUN_OPTS[@]}" "$BASE_IMAGE" python3 -c 'import platform; print(platform.python_version())')
    reqs=$(mktemp)
    "$PYTHON" deployments/container/requirements.py pyproject.toml >"$reqs"
    stamp="$WHEELHOUSE/.filled-for"
    want=$(cat "$reqs" constraints.txt deployments/container/requirements.py <(echo "$pyver") | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        say "wheelhouse is current (Python $pyver)"
    else
        say "filling $WHEELHOUSE for Python $pyver with pip -c constraints.txt"
        quiet() { grep -v "^WARNING: Location .* is ignored" >&2 || true; }
        "$PYTHON" -m pip wheel --quiet --wheel-dir "$WHEELHOUSE" -c constraints.txt -r "$reqs" \
            'setuptools>=69' wheel 2>&1 | quiet
        report=$(mktemp)
        "$PYTHON" -m pip install --quiet --dry-run --ignore-installed --report "$report" \
            --find-links "$WHEELHOUSE" -c constraints.txt -r "$reqs" 2>&1 | quiet
        "$PYTHON" deployments/container/requirements.py --marker-gaps "$report" "$pyver" >"$report.gaps"
        if [ -s "$report.gaps" ]; then
            say "for Python $pyver also: $(tr '\n' ' ' <"$report.gaps")"
            "$PYTHON" -m pip download --quiet --dest "$WHEELHOUSE" --find-links "$WHEELHOUSE" \
                --only-binary=:all: --python-version "$pyver" -c constraints.txt -r "$report.gaps" 2>&1 | quiet
        fi
        rm -f "$report" "$report.gaps"
        echo "$want" >"$stamp"
    fi
    rm -f "$reqs"
else
    say "base image $BASE_IMAGE will be pulled by the build; the build installs from the package index"
fi

say "building $IMAGE from Containerfile (base $BASE_IMAGE) with $ENGINE"
code_version=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && code_version="$code_version-dirty"
exec "$ENGINE" build "${RUN_OPTS[@]}" -f Containerfile --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "CODE_VERSION=$code_version" -t "$IMAGE" .
