"""Kubernetes YAML played: `hostctl kube play` vs podman 4.3.1's `podman kube play`.

The same Pod (one busybox container on the host's network, printing a line, then
sleeping) played by each in turns inside a systemd test host: the time from the command's
start to the container's line in the journal (`hostctl kube play` installs the
declarations, reloads systemd and starts the pod's unit; podman runs its infra container
and the member with `--log-driver journald`), and the time `kube down` takes. Median of
N runs each, with runc for both.

    sudo .venv/bin/python bench/kube.py [--runs 10]

podman (Debian's 4.3.1) is a bench-only package: `apt-get install podman`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.peerhost import registry_guest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: bench}}
spec:
  hostNetwork: true
  containers:
  - name: app
    image: {ref}
    command: [sh, -c, 'echo {line}; trap "exit 0" TERM; sleep 600 & wait']
"""


def _first_line_ms(host: TestHost, argv: list[str], line: str) -> float:
    """Milliseconds from running ARGV to LINE's journal entry."""
    out = host.sh("t=$(date +%s%6N); " + " ".join(argv) + " >/dev/null; echo $t").stdout
    started = int(out.split()[-1])
    for _ in range(400):
        journal = host.run(["journalctl", "--no-pager", "-o", "json",
                            f"--since=@{started // 1_000_000 - 1}"]).stdout
        stamps = [int(e["__REALTIME_TIMESTAMP"]) for e in map(json.loads, journal.splitlines())
                  if str(e.get("MESSAGE", "")).strip() == line]
        if stamps:
            return (min(stamps) - started) / 1000
        time.sleep(0.05)
    raise RuntimeError(f"{argv}: no {line!r} in the journal")


def _down_ms(host: TestHost, argv: list[str]) -> float:
    started = time.perf_counter()
    host.run(argv)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("podman") is None:
        raise SystemExit("podman is not installed (apt-get install podman)")
    with registry_guest() as (host, ref):
        report(host, ref, args.runs)


def report(host: TestHost, ref: str, runs: int) -> None:
    host.run([HOSTCTL, "install"])
    host.run(["podman", "pull", "--tls-verify=false", ref])
    host.run([HOSTCTL, "pull", ref])
    plays = {
        "hostctl": ([HOSTCTL, "kube", "play", "/root/bench.yaml"],
                    [HOSTCTL, "kube", "down", "/root/bench.yaml"]),
        "podman 4.3.1": (["podman", "--runtime", "runc", "kube", "play", "--log-driver",
                          "journald", "/root/bench.yaml"],
                         ["podman", "kube", "down", "/root/bench.yaml"]),
    }
    up: dict[str, list[float]] = {label: [] for label in plays}
    down: dict[str, list[float]] = {label: [] for label in plays}
    labels = list(plays)
    for round_ in range(runs + 1):  # the first round warms caches and is not counted
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            line = f"bench-{round_}-{label.split()[0]}"
            host.write_file("/root/bench.yaml", POD.format(ref=ref, line=line))
            started = _first_line_ms(host, plays[label][0], line)
            stopped = _down_ms(host, plays[label][1])
            if round_:
                up[label].append(started)
                down[label].append(stopped)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"kube play to the first journal line, and kube down; median of {runs} "
          f"(load average {' '.join(load)}):")
    for label in labels:
        print(f"  {label:<14} play {statistics.median(up[label]):8.1f} ms   "
              f"down {statistics.median(down[label]):8.1f} ms")
    for what, values in (("play", up), ("down", down)):
        ratio = statistics.median(values["hostctl"]) / statistics.median(values["podman 4.3.1"])
        print(f"  hostctl / podman {what}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
