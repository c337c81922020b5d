"""Shared fixtures: a registry, a pushed busybox image, a booted systemd test host.

Select sets with markers: `pytest -m "not integration"` for the unit tests (no root),
`pytest -m integration` for tests against real parts. Integration tests skip with the
reason when the machine cannot run them (not root, a tool missing). Integration tests
whose guests share the machine's network namespace are also marked `shared_network`:
scripts/test.sh runs them in one pytest process and everything else in a second one
beside it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support import hostfs
from tests.support.imagebuild import busybox_image, push
from tests.support.registry import Registry
from tests.support.testhost import TestHost

# Tools without which no integration test can run at all (more specific needs are
# checked by the tests themselves).
INTEGRATION_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "runc": "runc",
    "docker-registry": "docker-registry",
    "nsenter": "util-linux",
}
# Integration modules that may run beside others: their guests have a network namespace of
# their own (tests/support/netguest.py), or they boot no guest at all. Every other
# integration module boots guests that share the machine's network namespace (its
# bridges, iptables chains and host ports): those are marked shared_network and run one
# after another. A new module is shared until it is listed here.
OWN_NETWORK_MODULES = frozenset({
    "test_ansible_sanity", "test_compose", "test_images_breakouts", "test_images_pull",
    "test_images_push", "test_images_registry_protocol", "test_images_signatures",
    "test_images_umoci", "test_images_variants", "test_images_verify", "test_kube",
    "test_network", "test_pods", "test_quadlet", "test_user_network",
})
BUSYBOX_REPOSITORY = "demo/busybox"
BUSYBOX_TAG = "1"


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject.toml; repeated so the suite works with any rootdir.
    config.addinivalue_line(
        "markers", "integration: needs root, runc, a registry or a systemd test host"
    )
    config.addinivalue_line(
        "markers", "shared_network: boots guests on the machine's network namespace"
    )


def integration_unavailable() -> str | None:
    """Why integration tests cannot run on this machine, or None if they can."""
    if os.geteuid() != 0:
        return "integration tests need root (mounts, systemd-nspawn, runc)"
    for tool, package in INTEGRATION_TOOLS.items():
        if shutil.which(tool) is None:
            return f"{tool} not found (install {package}: scripts/setup.sh)"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    # Leftovers of a crashed earlier run (a killed pytest) would hold mounts and disk.
    if os.geteuid() == 0:
        hostfs.cleanup_stale()


@pytest.hookimpl(tryfirst=True)  # marks first, then -m selects on them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (item.get_closest_marker("integration") is not None
                and item.path.stem not in OWN_NETWORK_MODULES):
            item.add_marker(pytest.mark.shared_network)
    reason = integration_unavailable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """An empty docker-registry on a free port of 127.0.0.1, for the whole session."""
    with Registry() as reg:
        yield reg


@pytest.fixture(scope="session")
def busybox_ref(registry: Registry) -> str:
    """Reference of the busybox image pushed to the session registry (Cmd ["sh"])."""
    push(registry.host, BUSYBOX_REPOSITORY, BUSYBOX_TAG, busybox_image())
    return f"{registry.host}/{BUSYBOX_REPOSITORY}:{BUSYBOX_TAG}"


@pytest.fixture(scope="module")
def test_host() -> Iterator[TestHost]:
    """A booted systemd test host shared by the tests of one module, closed after them."""
    with TestHost() as host:
        yield host
