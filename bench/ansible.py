"""First deploys and no-op runs: hostctl.hostctl.container against containers.podman.

Three systemd test hosts reached over ssh (tests/support/fleet.py). The same play, ten
containers per host (busybox from a local registry, host network, `sleep`), is written
with containers.podman.podman_container (from PyPI's `ansible` package, against Debian's
podman 4.3.1 in the same hosts) as a loop of one task per container, and with
hostctl.hostctl.container twice: as the same loop, and as one task whose `containers`
option lists the ten. A loop of `ansible.builtin.command: true` is timed too: the floor
of Ansible's own cost for one task per container. Every play runs under the same
ansible.cfg (tests/support/fleet.py: pipelining, forks=10, ssh ControlPersist).

First deploys: each container play is timed from nothing (its containers absent, the
image not in the host's store: `hostctl image rm`, `podman rmi`) over RUNS runs, the
plays in turns; each deploys and starts the containers, pulling the image. Target: the
first deploy <= 0.6x podman's. hostctl's list form is the one that does one daemon-reload
per host, one pull per image and queues the starts together (module_utils/deploy.py);
the loop form pays a task per container as podman's does.
No-op runs: then timed over RUNS no-op runs (everything already in place); the medians
and the ratios to podman's are printed. Target: hostctl <= 0.5x. The load average is
printed with the numbers.

hostctl is byte-compiled first (the guests see this checkout read-only, so they could
not write its __pycache__): an installed wheel has its bytecode too.

    sudo .venv/bin/python bench/ansible.py [--runs 3] [--containers 10] [--no-noop]
"""

from __future__ import annotations

import argparse
import os
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
        state: "{{ state | default('started') }}"
      loop: "{{ range(count | int) | list }}"
"""

HOSTCTL_LIST_PLAY = """\
- hosts: fleet
  gather_facts: false
  vars:
    ansible_python_interpreter: @PYTHON@
  tasks:
    - hostctl.hostctl.container:
        image: "{{ image }}"
        network: host
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1d & wait"]
        stop_timeout: 2
        state: "{{ state | default('started') }}"
        containers:
@ITEMS@"""

FLOOR_PLAY = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - ansible.builtin.command: "true"
      changed_when: false
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
        state: "{{ state | default('started') }}"
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


def timed(fleet: Fleet, play: str, **extra: object) -> float:
    """Seconds one no-op run of PLAY takes (it must succeed and change nothing)."""
    started = time.monotonic()
    run = fleet.playbook(play, extra_vars=extra).check()
    seconds = time.monotonic() - started
    if any(run.changed.values()):
        print(f"  note: a no-op run reported changes: {run.changed}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed no-op runs per play")
    parser.add_argument("--containers", type=int, default=10, help="containers per host")
    parser.add_argument("--no-noop", dest="noop", action="store_false",
                        help="time the first deploys only")
    args = parser.parse_args()
    collections = podman_collection()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "hostctl")],
                   check=True)
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
            first_deploys(fleet, image, args.runs, args.containers)
            return measure(fleet, image, args.runs, args.containers) if args.noop else 0


def plays(count: int) -> dict[str, str]:
    """The plays timed, by label: hostctl's loop and list, podman's loop, the floor."""
    python = sys.executable
    items = "".join(f"          - name: bench{number}\n" for number in range(count))
    return {
        "hostctl loop": HOSTCTL_PLAY.replace("@PYTHON@", python),
        "hostctl list": HOSTCTL_LIST_PLAY.replace("@PYTHON@", python).replace("@ITEMS@", items),
        "podman loop": PODMAN_PLAY,
        "floor loop": FLOOR_PLAY,
    }


FIRST_DEPLOYS = ("hostctl list", "hostctl loop", "podman loop")


def clear(fleet: Fleet, label: str, play: str, image: str, count: int) -> None:
    """PLAY's containers absent and IMAGE out of the stores: what a first deploy finds."""
    fleet.playbook(play, extra_vars={"image": image, "count": count, "state": "absent"}).check()
    for host in fleet.hosts.values():
        if label.startswith("podman"):
            host.run(["podman", "rmi", "--force", image], check=False)
        else:
            host.run([str(BIN / "hostctl"), "image", "rm", image], check=False)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def first_deploys(fleet: Fleet, image: str, runs: int, count: int) -> None:
    """Median seconds of a first deploy of each play of FIRST_DEPLOYS, in turns."""
    print(f"{len(fleet.hosts)} hosts x {count} containers, {runs} timed first deploys each")
    timed_plays = plays(count)
    seconds: dict[str, list[float]] = {label: [] for label in FIRST_DEPLOYS}
    for _ in range(runs):
        for label in FIRST_DEPLOYS:
            clear(fleet, label, timed_plays[label], image, count)
            started = time.monotonic()
            run = fleet.playbook(timed_plays[label], extra_vars={"image": image, "count": count})
            seconds[label].append(time.monotonic() - started)
            run.check()
            print(f"  {label}: first deploy {seconds[label][-1]:.2f} s (load {load()})")
    medians = {label: statistics.median(taken) for label, taken in seconds.items()}
    for label in FIRST_DEPLOYS:
        print(f"  {label:13} first deploy: median {medians[label]:.2f} s")
    for label in ("hostctl list", "hostctl loop"):
        print(f"  ratio {label} / podman loop (first deploy): "
              f"{medians[label] / medians['podman loop']:.2f}x (target <= 0.60x)")
    # Every play stays deployed for the no-op runs (hostctl's two forms share containers).


def measure(fleet: Fleet, image: str, runs: int, count: int) -> int:
    print(f"{len(fleet.hosts)} hosts x {count} containers, {runs} timed no-op runs each")
    timed_plays = plays(count)
    # Interleaved, so that a change in the machine's load falls on every play alike.
    seconds: dict[str, list[float]] = {label: [] for label in timed_plays}
    for _ in range(runs):
        for label, play in timed_plays.items():
            seconds[label].append(timed(fleet, play, image=image, count=count))
    results = {}
    for label, taken in seconds.items():
        results[label] = statistics.median(taken)
        shown = ", ".join(f"{s:.2f}" for s in taken)
        print(f"  {label:13} no-op run: median {results[label]:.2f} s ({shown})")
    podman = results["podman loop"]
    for label in ("hostctl loop", "hostctl list", "floor loop"):
        target = "" if label.startswith("floor") else " (target <= 0.50x)"
        print(f"  ratio {label} / podman loop: {results[label] / podman:.2f}x{target}")
    print(f"  load average: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
