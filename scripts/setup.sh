#!/usr/bin/env bash
# Prepare a Debian 12 machine for hostctl development and its test suite.
# Idempotent: installs only missing packages, creates .venv only if absent.
# Run as root from anywhere: scripts/setup.sh
set -euo pipefail

PACKAGES=(
    runc crun tini catatonit systemd-container python3-pydbus python3-venv
    docker-registry skopeo umoci podman busybox-static uidmap
    python3-cryptography python3-bcrypt python3-nacl
    containernetworking-plugins iptables passt iproute2
    openssh-server openssh-client
    buildah
    pigz  # bench/pull.py compresses its layers with it
    podman-compose  # tests/unit/test_compose_podman.py compares `config` output with it
    isal curl  # bench/pull.py: the floor (curl | igzip -d | tar, every layer at once)
    # scripts/build-packages.sh (tests/integration/test_package.py builds the .deb), and
    # python3-jinja2 that the package depends on.
    debhelper dh-python pybuild-plugin-pyproject python3-all python3-jinja2
    gcc libc6-dev  # the compiled generator (hostctl/units/genfast.c)
    slirp4netns  # bench/start.py's rootless podman peer (podman 4.3.1 has no pasta networking)
)
PYTHON_EXTRAS=(zstandard rich)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"

step() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get install needs it)"
command -v dpkg-query >/dev/null || die "dpkg-query not found: this script is for Debian 12"

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        [[ $status == installed ]] || printf '%s\n' "$pkg"
    done
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} == 0)); then
    step "packages: all ${#PACKAGES[@]} already installed"
else
    step "packages: apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    step "packages: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if [[ -x $venv/bin/python ]]; then
    # pydbus and python3-gi come from Debian: the venv must see the system site-packages.
    grep -qx 'include-system-site-packages = true' "$venv/pyvenv.cfg" \
        || die "$venv was made without --system-site-packages: remove it and run again"
    step "virtualenv: $venv exists"
else
    step "virtualenv: creating $venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

# pip takes seconds even when nothing changes: skip it while pyproject.toml and the extras
# are the same as at the last successful install (the stamp records both).
stamp="$venv/.hostctl-setup-stamp"
wanted="$(sha256sum "$repo/pyproject.toml" "$0" | sha256sum | cut -d' ' -f1) ${PYTHON_EXTRAS[*]}"
if [[ -f $stamp && $(<"$stamp") == "$wanted" ]] \
    && "$venv/bin/python" -c 'import hostctl, zstandard, rich, pytest' 2>/dev/null; then
    step "python: hostctl[test] ${PYTHON_EXTRAS[*]} up to date in $venv"
else
    # compat: the editable install is a plain path in a .pth file, not setuptools' import
    # hook, which costs every `hostctl launch` (every container start) about 15 ms.
    step "python: pip install -e '.[test]' ${PYTHON_EXTRAS[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --config-settings editable_mode=compat -e "$repo[test]" "${PYTHON_EXTRAS[@]}"
    printf '%s\n' "$wanted" >"$stamp"
fi

# The launcher and the generator run at every start and boot: give them compiled
# bytecode up front (test hosts see this tree read-only through their overlay, and
# PYTHONDONTWRITEBYTECODE may be set), so no start pays for compiling hostctl.
step "python: compiling hostctl's bytecode"
"$venv/bin/python" -m compileall -q "$repo/hostctl" >/dev/null

step "done: run tests with $venv/bin/python -m pytest -m 'not integration' (or -m integration)"
