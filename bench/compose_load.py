"""Loading a 10-service compose project in a fresh interpreter: hostctl against
podman-compose 1.0.3 (Debian's), taken in turns.

The generator loads every compose project at each daemon-reload, in a process of its
own, so what counts is a fresh interpreter's whole time: start, imports, reading the
files and .env, interpolation, anchors, extends, an override, normalisation. The
project (written to a temporary directory) has ten services with healthchecks,
depends_on conditions, ports, volumes, env files, anchors and an `extends`.

Each run starts `python -c` three ways, in turns: an empty one (the interpreter's own
start, the floor), hostctl's load_project, and podman-compose's own loader
(PodmanCompose._parse_compose_file: it has no `config` verb in 1.0.3). Medians over
RUNS are printed, wall time and CPU time (user + system of the child: less distorted
when the machine is shared), with the time above the floor and the ratio to
podman-compose. Target: hostctl under 50 ms in all. Also printed: the CPU time of
hostctl's modules and the load in an interpreter that has pathlib and PyYAML imported
already, as the generator has for its declarations. hostctl is byte-compiled first and
the children run without PYTHONDONTWRITEBYTECODE, as an installed package has its
bytecode (so do Debian's podman-compose and PyYAML).

    .venv/bin/python bench/compose_load.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICE = """
  app{n}:
    <<: *defaults
    image: "registry.local/demo/app{n}:${{TAG:-1.0}}"
    command: ["/app/serve", "--port", "80{n:02d}"]
    ports: ["${{BASE:-90}}{n:02d}:80{n:02d}"]
    environment:
      SERVICE: app{n}
      DB_URL: "postgres://app:${{PW:?password}}@db:5432/app{n}"
    env_file: [common.env]
    volumes: ["./data/app{n}:/data", "cache{n}:/cache"]
    depends_on:
      db: {{condition: service_healthy}}
      cache: {{condition: service_started}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost:80{n:02d}/health"]
      interval: 10s
      timeout: 3s
"""
HEAD = """
x-defaults: &defaults
  restart: unless-stopped
  logging: {driver: json-file, options: {max-size: 10m}}
  labels: {tier: app}
services:
  db:
    image: postgres:16
    environment: {POSTGRES_PASSWORD: "${PW}"}
    volumes: ["dbdata:/var/lib/postgresql/data"]
    healthcheck: {test: pg_isready, interval: 5s}
  cache:
    extends: {file: base.yaml, service: redis}
"""
BASE = "services:\n  redis:\n    image: redis:7\n    command: redis-server --save ''\n"
OVERRIDE = "services:\n  app1:\n    ports: ['9443:443']\n    environment: {DEBUG: '1'}\n"

HOSTCTL = (
    "import sys; sys.path.insert(0, {repo!r}); from pathlib import Path;"
    "from hostctl.compose.project import load_project;"
    "p = load_project(Path({root!r})); assert len(p.model['services']) == 10"
)
# What a compose project adds to a generator that has pathlib and yaml loaded already
# (the declarations need them): hostctl's modules and the load, CPU time in the child.
MARGINAL = (
    "import sys, time; sys.path.insert(0, {repo!r}); import pathlib, yaml;"
    "start = time.process_time();"
    "from hostctl.compose.project import load_project;"
    "load_project(pathlib.Path({root!r}));"
    "print(time.process_time() - start)"
)
PODMAN = (
    "import argparse, podman_compose; c = podman_compose.PodmanCompose();"
    "c.global_args = argparse.Namespace(file=[], project_name=None, no_ansi=True,"
    " no_cleanup=False, dry_run=True, command='config');"
    "c._parse_compose_file(); assert len(c.services) == 10"
)


ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def write_project(root: Path) -> None:
    services = "".join(SERVICE.format(n=n) for n in range(1, 9))
    volumes = "volumes:\n  dbdata:\n" + "".join(f"  cache{n}:\n" for n in range(1, 9))
    (root / "compose.yaml").write_text(HEAD + services + volumes)
    (root / "compose.override.yaml").write_text(OVERRIDE)
    (root / "base.yaml").write_text(BASE)
    (root / "common.env").write_text("LOG_LEVEL=info\nWORKERS=4\n")
    (root / ".env").write_text("PW=secret\nTAG=2.0\n")


def timed(code: str, cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a fresh interpreter running CODE."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "hostctl")],
                   check=True, env=ENV)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        root.mkdir()
        write_project(root)
        codes = {
            "floor (python -c pass)": "pass",
            "hostctl load_project": HOSTCTL.format(repo=str(REPO), root=str(root)),
            "podman-compose 1.0.3": PODMAN,
        }
        for code in codes.values():  # warm the page cache and the bytecode
            timed(code, root)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in codes}
        marginal: list[float] = []
        for _ in range(args.runs):
            for name, code in codes.items():
                times[name].append(timed(code, root))
            marginal.append(float(subprocess.run(
                [sys.executable, "-c", MARGINAL.format(repo=str(REPO), root=str(root))],
                check=True, env=ENV, capture_output=True, text=True).stdout))  # fmt: skip
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; runs: {args.runs}")
    for index, kind in enumerate(("wall", "cpu")):
        medians = {name: statistics.median(v[index] for v in values) * 1000
                   for name, values in times.items()}  # fmt: skip
        floor = medians["floor (python -c pass)"]
        for name, value in medians.items():
            print(f"{kind:4s} {name:26s} {value:7.1f} ms  (above the floor: "
                  f"{value - floor:6.1f} ms)")  # fmt: skip
        ours, peer = medians["hostctl load_project"], medians["podman-compose 1.0.3"]
        print(f"{kind:4s} hostctl / podman-compose: {ours / peer:.2f}x (above the floor: "
              f"{(ours - floor) / (peer - floor):.2f}x); target: hostctl < 50 ms")  # fmt: skip
    print(f"cpu  hostctl modules + load with pathlib and yaml already imported (the "
          f"generator's case): {statistics.median(marginal) * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
