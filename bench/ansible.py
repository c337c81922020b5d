"""A no-op Ansible run: hostctl.hostctl.container against containers.podman.podman_container.

Three systemd test hosts reached over ssh (tests/support/fleet.py). The same play, ten
containers per host (busybox from a local registry, host network, `sleep`), is written
once with hostctl.hostctl.container and once with containers.podman.podman_container
(from PyPI's `ansible` package) against Debian's podman 4.3.1 in the same hosts. Each
play is run once to deploy, then timed over RUNS no-op runs (everything already in
place); the medians and their ratio are printed. Target: hostctl <= 0.5x podman.

    sudo .venv/bin/python bench/ansible.py [--runs 3] [--containers 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.fleet import Fleet  # noqa: E402
from tests.support.imagebuild import busybox_image, push  # noqa: E402
from tests.support.registry import Registry  # noqa: E402

BIN = Path(sys.executable).parent
CACHE = Path("/var/tmp/hostctl-bench-ansible")
ANSIBLE_SPEC = "ansible>=12,<13"  # the release that pairs with ansible-core 2.19
PODMAN_COLLECTION = "ansible_collections/containers/podman/"

HOSTCTL_PLAY = """\
- hosts: fleet
  gather_facts: false
  vars:
    ansible_python_interpreter: @PYTHON@
  tasks:
    - hostctl.hostctl.container:
        name: "bench{{ item }}"
        image: "{{ image }}"
        network: host
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1d & wait"]
        stop_timeout: 2
      loop: "{{ range(count | int) | list }}"
"""

PODMAN_PLAY = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - containers.podman.podman_container:
        name: "pbench{{ item }}"
        image: "{{ image }}"
        network: host
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1d & wait"]
        stop_timeout: 2
        tls_verify: false
        state: started
      loop: "{{ range(count | int) | list }}"
"""

# The guest has no pids controller: podman's default pids limit fails the start, and
# podman_container's `pids_limit: -1` reports "changed" on every run (test-host.md).
# crun 1.8 (podman's default here) fails raising RLIMIT_MEMLOCK inside the guest; runc
# is also what hostctl uses, so both sides run the same runtime.
CONTAINERS_CONF = '[containers]\npids_limit = 0\n[engine]\nruntime = "runc"\n'


def podman_collection() -> Path:
    """containers.podman, unpacked from PyPI's `ansible` wheel (downloaded once)."""
    target = CACHE / "collections"
    if (target / PODMAN_COLLECTION).is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob("ansible-*.whl"))
    if not wheels:
        subprocess.run([str(BIN / "pip"), "download", "--quiet", "--no-deps", "-d", str(CACHE),
                        ANSIBLE_SPEC], check=True)
        wheels = sorted(CACHE.glob("ansible-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        members = [m for m in wheel.namelist() if m.startswith(PODMAN_COLLECTION)]
        wheel.extractall(target, members)
    return target


def timed(fleet: Fleet, play: str, runs: int, **extra: object) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.monotonic()
        run = fleet.playbook(play, extra_vars=extra).check()
        seconds.append(time.monotonic() - started)
        if any(run.changed.values()):
            print(f"  note: a no-op run reported changes: {run.changed}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed no-op runs per play")
    parser.add_argument("--containers", type=int, default=10, help="containers per host")
    args = parser.parse_args()
    collections = podman_collection()
    with Registry() as registry:
        push(registry.host, "bench/busybox", "1", busybox_image())
        image = f"{registry.host}/bench/busybox:1"
        # The local registry speaks plain HTTP: podman_container's tls_verify: false lets
        # podman fall back to it (hostctl uses HTTP for loopback registries by itself).
        files = {"/etc/containers/containers.conf": CONTAINERS_CONF}
        with Fleet(3, prefix="bench", files=files, binds=("/var/lib/containers",)) as fleet:
            for host in fleet.hosts.values():
                host.run([str(BIN / "hostctl"), "install"])
            fleet.add_collections(collections)
            return measure(fleet, image, args.runs, args.containers)


def measure(fleet: Fleet, image: str, runs: int, count: int) -> int:
    hostctl_play = HOSTCTL_PLAY.replace("@PYTHON@", sys.executable)
    hosts = len(fleet.hosts)
    print(f"{hosts} hosts x {count} containers, {runs} timed no-op runs each")
    for label, play in (("hostctl", hostctl_play), ("podman", PODMAN_PLAY)):
        started = time.monotonic()
        fleet.playbook(play, extra_vars={"image": image, "count": count}).check()
        print(f"  {label}: first deploy {time.monotonic() - started:.1f} s")
    results = {}
    for label, play in (("hostctl", hostctl_play), ("podman", PODMAN_PLAY)):
        seconds = timed(fleet, play, runs, image=image, count=count)
        results[label] = statistics.median(seconds)
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"  {label:8} no-op run: median {results[label]:.2f} s ({shown})")
    ratio = results["hostctl"] / results["podman"]
    print(f"  ratio hostctl/podman: {ratio:.2f}x (target <= 0.50x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
