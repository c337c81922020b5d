#!/usr/bin/env bash
# Build hostctl's deliverables from the tree into dist/: the Debian package
# (dpkg-buildpackage -us -uc -b), the wheel, and the Ansible collection tarball.
# Needs debhelper, dh-python, pybuild-plugin-pyproject (scripts/setup.sh installs them)
# and PyPI for the wheels the Debian package ships (see debian/rules).
#   scripts/build-packages.sh [deb] [wheel] [collection]     (default: all three)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dist="${HOSTCTL_DIST:-$repo/dist}"  
python="$repo/.venv/bin/python"
[[ -x $python ]] || python=/usr/bin/python3
wanted=("$@")
((${#wanted[@]})) || wanted=(deb wheel collection)
step() { printf 'build: %s\n' "$*"; }
mkdir -p "$dist"

# A copy of the tree as git has it: no .venv, caches or earlier builds in the package.
tree="$(mktemp -d /var/tmp/hostctl-build.XXXXXX)"
trap 'rm -rf "$tree"' EXIT
git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | (cd "$repo" && xargs -0 cp -d --parents -t "$tree" 2>/dev/null || true)

for what in "${wanted[@]}"; do
    case $what in
    wheel)
        step "wheel"
        "$python" -m pip wheel -q --no-deps --no-build-isolation -w "$dist" "$tree" ;;
    collection)
        step "Ansible collection"
        (cd "$tree/ansible_collection" \
            && "$repo/.venv/bin/ansible-galaxy" collection build --force --output-path "$dist" >/dev/null)
        ;;
    deb)
        step "Debian package: the PyPI wheels it ships"
        # jinja2 and PyYAML come from Debian (python3-jinja2, python3-yaml).
        "$python" -m pip download -q --only-binary=:all: --python-version 3.11 \
            --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_17_x86_64 -d "$tree/debian/wheels" \
            "typer>=0.9" "urllib3>=2.0" "isal>=1.5" "zstandard>=0.22" 2>&1 \
            | grep -v "^WARNING: Location" || true
        step "Debian package: dpkg-buildpackage -us -uc -b"
        # Debian's python3 and helpers, whatever else is first on PATH.
        (cd "$tree" && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b \
            >"$dist/dpkg-buildpackage.log" 2>&1) \
            || { tail -30 "$dist/dpkg-buildpackage.log" >&2; exit 1; }
        mv "$tree"/../hostctl_*.deb "$dist/"
        rm -f "$tree"/../hostctl_*.buildinfo "$tree"/../hostctl_*.changes
        ;;
    *) echo "build: unknown target $what (deb, wheel, collection)" >&2; exit 2 ;;
    esac
done
ls -1 "$dist"
