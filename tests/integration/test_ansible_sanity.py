"""ansible-test sanity (with empty ignore files) and ansible-test units on the collection.

ansible-test only runs from a path ending in ansible_collections/NAMESPACE/NAME, so the
collection is copied into such a tree in a temp dir. Marked integration: ansible-test
builds its own virtualenvs (from PyPI, once; later runs reuse them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

COLLECTION = Path(__file__).resolve().parents[2] / "ansible_collection"
ANSIBLE_TEST = Path(sys.executable).parent / "ansible-test"

# ansible-test bootstraps pip in its venvs with get-pip.py from ci-files.testing.ansible.com,
# which machines without general internet access cannot reach. This stand-in, put where
# ansible-test caches that script, bootstraps the pip that ships with Python instead.
GET_PIP_STAND_IN = '''\
"""Offline stand-in for get-pip.py (written by hostctl's tests): bootstrap the bundled
pip, then install as asked (--no-setuptools/--no-wheel mean: do not add them)."""
import ensurepip
import runpy
import sys

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", "--upgrade", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
'''


def _pip_version() -> str:
    """The pip version ansible-test bootstraps (its default_packages, pip='X.Y')."""
    import importlib.util

    spec = importlib.util.find_spec("ansible_test")
    assert spec is not None and spec.origin is not None, "ansible-test is not installed"
    source = Path(spec.origin).parent / "_internal/python_requirements.py"
    found = re.search(r"pip='([0-9.]+)'", source.read_text())
    assert found, f"no pip version in {source}"
    return found.group(1)


def _ensure_get_pip() -> None:
    cache = Path.home() / ".ansible/test/cache"
    script = cache / f"get_pip_{_pip_version().replace('.', '_')}.py"
    if not script.exists():
        cache.mkdir(parents=True, exist_ok=True)
        script.write_text(GET_PIP_STAND_IN)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not ANSIBLE_TEST.exists():
        pytest.skip("ansible-test not installed (pip install ansible-core)")
    _ensure_get_pip()
    root = tmp_path_factory.mktemp("collections")
    target = root / "ansible_collections/hostctl/hostctl"
    shutil.copytree(COLLECTION, target, ignore=shutil.ignore_patterns("tests/output"))
    yield target
    shutil.rmtree(root, ignore_errors=True)


def ansible_test(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(ANSIBLE_TEST), *args, "--python", "3.11", "--color", "no"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=900,
                          check=False)


def test_sanity_ignore_files_are_empty() -> None:
    for ignore in (COLLECTION / "tests/sanity").glob("ignore-*.txt"):
        assert ignore.read_text() == "", ignore


def test_ansible_test_sanity_passes(tree: Path) -> None:
    done = ansible_test(tree, "sanity")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]


def test_ansible_test_units_pass(tree: Path) -> None:
    done = ansible_test(tree, "units", "--venv")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    assert " passed" in done.stdout
