"""Compose projects: generating their units, and a whole project up vs podman-compose.

Part 1, generating units for a 10-service compose project (target: at most 50 ms):
  in-process    loading, translating and rendering the project (hostctl.compose.units;
                the process's translation cache emptied before each run)
  generator     the generator script `hostctl install` writes (hostctl.units.genentry:
                python -sSE) with its render cache off, writing every unit into an
                empty directory (interpreter start and imports included)
  cached        the same process when nothing changed since its last run
  python floor  the interpreter starting (-sSE, as the script) and exiting: on a loaded machine
                every process number is a multiple of it
Part 2, web + db + cache up (target: at most 0.5x podman-compose's time), in one systemd
test host with its own network, from the same compose file: db has a health check that
web waits for (service_healthy); each run starts from nothing running (images stored)
and ends when every service's first line is in the journal:
  hostctl       `hostctl compose up -d` (install, daemon-reload, start PROJECT.target)
  podman        `podman-compose up -d` (Debian's 1.0.3; podman 4.3.1 with runc, the
                journald log driver, containers in a directory of the machine)
With --baseline BIN (the bin directory of another checkout's venv, e.g. main's), its
`hostctl compose up -d` is a third kind in the same turns: before each run of either
hostctl, that hostctl's `install` (untimed) puts its generator in place.
Then, in the same host, a stopped service of the project up started again until its
first line (`systemctl start shop-cache.service`): from its start record (the project's
files unchanged) and in full (its record removed first), in turns.
Runs are taken in turns; each number is the median of --runs runs. Needs root.
Usage: .venv/bin/python bench/compose.py [--runs 5] [--parts 1,2] [--baseline BIN]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import netguest  # noqa: E402
from tests.support.testhost import TestHost  # noqa: E402

VENV_BIN = Path(sys.executable).parent
HOSTCTL = str(VENV_BIN / "hostctl")
SERVICE = """\
  app{i}:
    image: registry.example.com/team/app{i}:1.4
    command: ["/app", "--port", "80{i:02d}"]
    environment: {{MODE: production, INDEX: "{i}"}}
    ports: ["{port}:80"]
    volumes: ["data{i}:/data", "./conf:/conf:ro"]
    healthcheck: {{test: ["CMD", "true"], interval: 10s}}
    deploy: {{resources: {{limits: {{memory: 512M, cpus: "0.5"}}}}}}
    restart: unless-stopped
"""
SRC = "/srv/shop"
COMPOSE = f"""\
services:
  web:
    image: {netguest.IMAGE}
    command: ["sh", "-c", "echo web starting; mkdir -p /www; exec httpd -f -p 80 -h /www"]
    ports: ["8080:80"]
    stop_signal: SIGKILL
    depends_on:
      db: {{condition: service_healthy}}
      cache: {{condition: service_started}}
  db:
    image: {netguest.IMAGE}
    command: ["sh", "-c", "echo db starting; touch /tmp/ready; exec sleep 600"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 1s
    volumes: [data:/data]
  cache:
    image: {netguest.IMAGE}
    command: ["sh", "-c", "echo cache starting; exec sleep 600"]
    stop_signal: SIGKILL
volumes:
  data: {{}}
"""
# Runs ARGV in the guest and waits until each journal match (FIELD=VALUE) has a line that
# is not hostctl's own launcher talking; prints the seconds from the start to then.
WAITER = "/usr/local/lib/bench-first-lines.py"
WAITER_CODE = """\
import json, subprocess, sys, time
argv, matches = sys.argv[1:sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1:]
began = time.time()
start = time.monotonic()
subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seen = set()
query = []
for match in matches:
    query += [match, "+"]
while True:
    out = subprocess.run(["journalctl", f"--since=@{int(began)}", "-o", "json", *query[:-1]],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        entry = json.loads(line)
        text = entry.get("MESSAGE")
        fresh = int(entry["__REALTIME_TIMESTAMP"]) >= began * 1e6
        if fresh and isinstance(text, str) and not text.startswith("hostctl:"):
            for match in matches:
                field, _, value = match.partition("=")
                if entry.get(field) == value:
                    seen.add(match)
    if len(seen) == len(matches):
        break
    if time.monotonic() - start > 120:
        sys.exit("timeout: only " + ", ".join(sorted(seen)))
    time.sleep(0.02)
print(time.monotonic() - start)
"""
PODMAN_CONF = {
    "/etc/containers/containers.conf":
        '[containers]\npids_limit = 0\nlog_driver = "journald"\n[engine]\nruntime = "runc"\n',
    "/etc/containers/registries.conf.d/bench.conf":
        f'[[registry]]\nlocation = "{netguest.REGISTRY}"\ninsecure = true\n',
    WAITER: WAITER_CODE,
}
HOSTCTL_UP = ["sh", "-c", f"cd {SRC} && exec {HOSTCTL} compose up -d"]
PODMAN_UP = ["sh", "-c", f"cd {SRC} && exec podman-compose -p pc up -d"]
HOSTCTL_LINES = ["_SYSTEMD_UNIT=shop-web.service", "_SYSTEMD_UNIT=shop-db.service",
                 "_SYSTEMD_UNIT=shop-cache.service"]
PODMAN_LINES = ["CONTAINER_NAME=pc_web_1", "CONTAINER_NAME=pc_db_1", "CONTAINER_NAME=pc_cache_1"]


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def ten_services(root: Path) -> None:
    folder = root / "etc/compose/ten"
    folder.mkdir(parents=True)
    (folder / "compose.yaml").write_text(
        "services:\n" + "".join(SERVICE.format(i=i, port=8000 + i) for i in range(10))
        + "volumes:\n" + "".join(f"  data{i}: {{}}\n" for i in range(10)))


def generation(runs: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    env = {**os.environ, "HOSTCTL_CONFIG_DIR": str(root / "etc"),
           "HOSTCTL_DECLARATION_PATH": str(root / "decls"), "SYSTEMD_SCOPE": "system",
           "HOSTCTL_STATE_DIR": str(root / "state"), "HOSTCTL_RUN_DIR": str(root / "run")}
    try:
        ten_services(root)
        os.environ.update(env)
        from hostctl.compose import installed
        from hostctl.compose.units import project_units
        from hostctl.paths import Scope
        from hostctl.units.genentry import script

        generator = root / "hostctl-generator"
        generator.write_text(script())
        generator.chmod(0o755)

        project_units(Scope.SYSTEM, ("python",), lambda _: None, set())  # imports, warm
        inproc, cold, cached, floor = [], [], [], []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-sSE", "-c", "pass"], check=True)
            floor.append(time.perf_counter() - start)
            installed._translated.clear()  # loaded and translated anew each run
            start = time.perf_counter()
            units = project_units(Scope.SYSTEM, ("python",), lambda _: None, set())
            inproc.append(time.perf_counter() - start)
            cold.append(_generator(generator, root, {**env, "HOSTCTL_GENERATOR_CACHE": "off"}))
            cached_env = {**env, "HOSTCTL_GENERATOR_CACHE": str(root / "cache")}
            _generator(generator, root, cached_env)
            cached.append(_generator(generator, root, cached_env))
        print(f"part 1: units of a 10-service compose project ({len(units)} units), "
              f"median of {runs}")
        print(f"  in-process (load, translate, render): {median_ms(inproc)}")
        print(f"  generator script, no cache:           {median_ms(cold)}")
        print(f"  generator script, cached:             {median_ms(cached)}")
        print(f"  python -sSE floor (start and exit):   {median_ms(floor)}")
        verdict = "meets" if statistics.median(cold) <= 0.05 else "misses"
        print(f"  -> the generator process {verdict} the 50 ms target")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _generator(generator: Path, root: Path, env: dict[str, str]) -> float:
    out = root / "out"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([str(generator), str(out)], env=env, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def first_lines(host: TestHost, up: list[str], lines: list[str], down: list[str],
                prepare: list[str] | None = None) -> float:
    if prepare:
        host.run(prepare, timeout=180)
    done = host.run(["/usr/bin/python3", "-I", WAITER, *up, "--", *lines], timeout=180)
    host.run(down, timeout=180)
    return float(done.stdout.strip())


def whole_project(runs: int, baseline: str | None) -> None:
    containers = Path(tempfile.mkdtemp(prefix="bench-containers-", dir="/var/tmp"))
    host = TestHost(nspawn_args=["--private-network", f"--bind={containers}:/var/lib/containers"],
                    files=PODMAN_CONF, masks=["podman.service"])
    try:
        host.start()
        host.sh(netguest.UPLINK)
        netguest.serve_image(host)
        host.run([HOSTCTL, "install"])
        host.write_file(f"{SRC}/compose.yaml", COMPOSE)
        host.run(["podman", "pull", netguest.IMAGE], timeout=120)
        host.run([HOSTCTL, "pull", netguest.IMAGE], timeout=120)
        kinds: dict[str, tuple[list[str], ...]] = {
            "hostctl compose up -d": (HOSTCTL_UP, HOSTCTL_LINES,
                                      ["sh", "-c", f"cd {SRC} && {HOSTCTL} compose down"]),
            "podman-compose up -d": (PODMAN_UP, PODMAN_LINES,
                                     ["sh", "-c", f"cd {SRC} && podman-compose -p pc down -t 1"]),
        }
        if baseline:
            other = f"{baseline}/hostctl"
            kinds["hostctl compose up -d"] += ([HOSTCTL, "install"],)
            kinds["baseline hostctl up -d"] = (
                ["sh", "-c", f"cd {SRC} && exec {other} compose up -d"], HOSTCTL_LINES,
                ["sh", "-c", f"cd {SRC} && {other} compose down"], [other, "install"])
        for kind in kinds.values():  # warm-up, untimed
            first_lines(host, *kind)
        samples: dict[str, list[float]] = {label: [] for label in kinds}
        labels = list(kinds)
        for round_ in range(runs):
            turn = round_ % len(labels)
            for label in labels[turn:] + labels[:turn]:
                samples[label].append(first_lines(host, *kinds[label]))
        print(f"part 2: web + db + cache up until every service's first line, median of {runs}")
        for label, found in samples.items():
            print(f"  {label:<24} {median_ms(found)}  (runs: "
                  + ", ".join(f"{s:.2f}" for s in found) + " s)")
        ratio = statistics.median(samples["hostctl compose up -d"]) / statistics.median(
            samples["podman-compose up -d"])
        verdict = "meets" if ratio <= 0.5 else "misses"
        print(f"  hostctl / podman-compose: {ratio:.2f}x -> {verdict} the 0.5x target")
        if baseline:
            theirs = statistics.median(samples["baseline hostctl up -d"])
            print(f"  baseline / podman-compose: "
                  f"{theirs / statistics.median(samples['podman-compose up -d']):.2f}x")
            host.run([HOSTCTL, "install"], timeout=180)
        restarts(host, runs)
    finally:
        host.close()
        shutil.rmtree(containers, ignore_errors=True)


def restarts(host: TestHost, runs: int) -> None:
    """A stopped compose service started again: from its record, and in full."""
    host.run(HOSTCTL_UP, timeout=180)
    unit, record = "shop-cache.service", "/run/hostctl/launch/shop-cache-1.record"
    samples: dict[str, list[float]] = {"recorded": [], "full": []}
    for round_ in range(runs):
        for kind in ("recorded", "full")[::1 if round_ % 2 else -1]:
            host.run(["systemctl", "stop", unit])
            host.run(["systemctl", "reset-failed", unit], check=False)
            if kind == "full":
                host.run(["rm", "-f", record])
            done = host.run(["/usr/bin/python3", "-I", WAITER, "systemctl", "start", unit,
                             "--", f"_SYSTEMD_UNIT={unit}"], timeout=60)
            samples[kind].append(float(done.stdout.strip()))
    host.run(["sh", "-c", f"cd {SRC} && {HOSTCTL} compose down"], timeout=180)
    print(f"  a stopped service started again until its first line, median of {runs}:")
    for kind, found in samples.items():
        print(f"    {kind:<10} {median_ms(found)}  (runs: "
              + ", ".join(f"{s:.2f}" for s in found) + " s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--parts", default="1,2")
    parser.add_argument("--baseline", help="another venv's bin directory, run in turns")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",")}
    load = Path("/proc/loadavg").read_text().split()[:3]
    if "1" in parts:
        generation(max(args.runs, 7))
    if "2" in parts:
        if shutil.which("podman-compose") is None:
            sys.exit("podman-compose not found: apt-get install -y podman-compose")
        whole_project(args.runs, args.baseline)
    print(f"(load average {' '.join(load)} at the start, "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end)")


if __name__ == "__main__":
    main()
