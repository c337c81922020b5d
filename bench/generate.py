"""Generator speed: hostctl-generator vs podman 5.4.2's quadlet over the same declarations.

For 1 declaration and for mixed sets (1000: three in four containers as YAML, one in four
as quadlet .container files, one in eight with a drop-in; for one in ten each a .volume,
a .network, a .pod and an .image file, for one in twenty a .build and a .kube file (its
Kubernetes YAML beside it): the other kinds come on top of the containers; quadlet gets the
same containers as .container files with the same drop-ins and the same other files),
each run a cold process writing into an empty directory on a tmpfs, as systemd's
/run/systemd/generator is:
  hostctl cold     no render cache: every declaration parsed and rendered
  hostctl cached   the render cache of the previous run, nothing changed since
  hostctl 1 edit   one declaration changed since the cached run (it must be re-rendered)
  console cached   the same hit started as the `hostctl-generator` console script (site,
                   `import re`): what the lean script `hostctl install` writes saves
  compiled cached  the compiled generator (hostctl/units/genfast.c, what `hostctl install`
                   installs when it finds a C compiler) answering from its fast cache
  compiled 1 edit  the compiled generator after an edit: it execs the Python script, which
                   renders the changed declaration and rewrites both caches
  quadlet          /usr/libexec/podman/quadlet (QUADLET_UNIT_DIRS=the .container dir)
  python floor     the virtualenv's interpreter starting and exiting without site (-sSE)
hostctl runs as systemd runs it: the script `hostctl install` writes (python -sSE,
hostctl.units.genentry). Runs of the peers are interleaved; each number is the median of
--runs runs. Also prints the import time of the generator's fast path and slow path
(python -X importtime) and the load average.

quadlet comes from Debian trixie's podman package, fetched with a private apt
configuration (nothing of the machine's apt setup is touched) and unpacked with dpkg -x
into --cache, unless --quadlet names a binary.
Usage: .venv/bin/python bench/generate.py [--runs 11] [--counts 1 1000] [--quadlet PATH]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hostctl.units import gencompile  # noqa: E402
from hostctl.units.genentry import script  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CONSOLE_SCRIPT = VENV_BIN / "hostctl-generator"
QUADLET_IN_DEB = "usr/libexec/podman/quadlet"
TRIXIE_SUITE = "trixie"  # Debian 13, whose podman 5.4.2 ships quadlet
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
DEFAULT_CACHE = Path.home() / ".cache/hostctl-bench/podman-trixie"

YAML = """\
image: registry.example.com/team/app{i}:1.4
command: ["/app", "--port", "{port}"]
env: {{MODE: production, INDEX: "{i}"}}
volumes: ["/srv/app{i}:/data"]
stop_timeout: 20
network: host
restart: on-failure
memory: 512M
install: {{WantedBy: multi-user.target}}
"""
# quadlet 5.4 has no Memory= key: the limit goes into [Service] as the unit directive.
CONTAINER = """\
[Container]
Image=registry.example.com/team/app{i}:1.4
Exec=/app --port {port}
Environment=MODE=production INDEX={i}
Volume=/srv/app{i}:/data
StopTimeout=20
Network=host

[Service]
Restart=on-failure
MemoryMax=512M

[Install]
WantedBy=multi-user.target
"""


def debian_mirror() -> str:
    """The Debian archive this machine's apt already uses (deb822 or one-line form)."""
    for source in APT_SOURCES:
        if not source.exists():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[1]:
                return words[1]
    raise SystemExit("no Debian archive in " + ", ".join(map(str, APT_SOURCES)))


def fetch_quadlet(cache: Path) -> Path:
    """quadlet from trixie's podman .deb, downloaded with apt options of its own."""
    binary = cache / "root" / QUADLET_IN_DEB
    if binary.exists():
        return binary
    apt = cache / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb {debian_mirror()} {TRIXIE_SUITE} main\n")
    (apt / "status").touch()
    options = [
        f"-oDir::Etc::sourcelist={apt / 'sources.list'}", "-oDir::Etc::sourceparts=-",
        f"-oDir::State::Lists={apt / 'lists'}", f"-oDir::Cache={apt / 'cache'}",
        f"-oDir::State::status={apt / 'status'}", "-oAPT::Sandbox::User=root",
    ]
    subprocess.run(["apt-get", *options, "-qq", "update"], check=True)
    subprocess.run(["apt-get", *options, "-qq", "download", "podman"], check=True, cwd=apt)
    deb = next(apt.glob("podman_*.deb"))
    subprocess.run(["dpkg", "-x", str(deb), str(cache / "root")], check=True)
    return binary


def quadlet_problem(binary: Path) -> str | None:
    """Why BINARY cannot run here (unresolved libraries...), or None."""
    done = subprocess.run([str(binary), "-version"], capture_output=True, text=True)
    if done.returncode == 0:
        return None
    libs = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    missing = [line.strip() for line in libs.splitlines() if "not found" in line]
    return f"quadlet does not run: {done.stderr.strip()} {' '.join(missing)}"


@contextmanager
def tmpfs() -> Iterator[Path]:
    """A fresh tmpfs (mounted when root; /dev/shm otherwise), removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="hostctl-bench-gen-"))
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", str(directory)]
    ).returncode == 0
    if not mounted:
        directory.rmdir()
        directory = Path(tempfile.mkdtemp(prefix="hostctl-bench-gen-", dir="/dev/shm"))
    try:
        yield directory
    finally:
        if mounted:
            subprocess.run(["umount", str(directory)], check=True)
            directory.rmdir()
        else:
            shutil.rmtree(directory)


DROPIN_YAML = "env: {EXTRA: dropin}\n"
DROPIN_CONF = "[Container]\nEnvironment=EXTRA=dropin\n"
# The other kinds, each one for one container in ten (build and kube: in twenty).
OTHER_KINDS = (
    (10, 2, "data{i:04d}.volume", "[Volume]\n"),
    (10, 4, "net{i:04d}.network", "[Network]\nSubnet=10.{a}.{b}.0/24\n"),
    (10, 6, "pod{i:04d}.pod", "[Pod]\nPublishPort={port}:80\n"),
    (10, 8, "img{i:04d}.image", "[Image]\nImage=registry.example.com/team/img{i}:1\n"),
    (20, 5, "b{i:04d}.build", "[Build]\nImageTag=localhost/b{i}:1\n"
                             "SetWorkingDirectory={base}/ctx\n"),
    (20, 15, "k{i:04d}.kube", "[Kube]\nYaml={base}/k{i:04d}.yaml\n"),
)
KUBE_YAML = """\
apiVersion: v1
kind: Pod
metadata: {{name: k{i:04d}}}
spec:
  containers:
    - name: web
      image: registry.example.com/team/web{i}:1
      ports: [{{containerPort: 80, hostPort: {port}}}]
"""


def write_declarations(base: Path, count: int) -> tuple[Path, Path]:
    """COUNT containers for hostctl and for quadlet; beyond one, the mix of kinds."""
    yaml_dir, quadlet_dir = base / f"yaml{count}", base / f"quadlet{count}"
    yaml_dir.mkdir()
    quadlet_dir.mkdir()
    for i in range(count):
        name, port = f"app{i:04d}", 8000 + i
        container = CONTAINER.format(i=i, port=port)
        (quadlet_dir / f"{name}.container").write_text(container)
        if count > 1 and i % 4 == 3:  # hostctl sets MemoryMax= itself: the limit is `memory:`
            (yaml_dir / f"{name}.container").write_text(container.replace("MemoryMax=512M\n", ""))
        else:
            (yaml_dir / f"{name}.yaml").write_text(YAML.format(i=i, port=port))
        if count > 1 and i % 8 == 1:
            for directory, suffix, text in ((yaml_dir, "yaml", DROPIN_YAML),
                                            (quadlet_dir, "container", DROPIN_CONF)):
                (directory / f"{name}.{suffix}.d").mkdir()
                (directory / f"{name}.{suffix}.d" / f"10-extra.{suffix[:4]}").write_text(text)
        for every, which, file_name, text in OTHER_KINDS if count > 1 else ():
            if i % every != which:
                continue
            values = {"i": i, "a": 100 + i // 250, "b": i % 250, "port": 20000 + i,
                      "base": base}
            for directory in (yaml_dir, quadlet_dir):
                (directory / file_name.format(**values)).write_text(text.format(**values))
            if file_name.endswith(".kube"):
                (base / f"k{i:04d}.yaml").write_text(KUBE_YAML.format(**values))
    (base / "ctx").mkdir(exist_ok=True)
    (base / "ctx" / "Containerfile").write_text("FROM scratch\n")
    return yaml_dir, quadlet_dir


def timed(argv: list[str], env: dict[str, str], out: Path, expect: int) -> float:
    """Seconds ARGV takes to write units into the empty dir OUT (checked: EXPECT units)."""
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    done = subprocess.run([*argv, str(out)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    units = len(list(out.glob("app????.service")))  # hostctl adds health and timer units
    if done.returncode != 0 or units != expect:
        raise SystemExit(f"{argv[0]} failed ({units}/{expect} units):\n{done.stderr[-2000:]}")
    return seconds


def measure(count: int, runs: int, quadlet: Path | None, base: Path) -> dict[str, float]:
    """Median seconds of each peer for COUNT declarations."""
    yaml_dir, quadlet_dir = write_declarations(base, count)
    cache = base / f"cache{count}"
    env = {**os.environ, "SYSTEMD_SCOPE": "system", "HOSTCTL_DECLARATION_PATH": str(yaml_dir),
           "HOSTCTL_GENERATOR_CACHE": str(cache)}
    qenv = {**os.environ, "QUADLET_UNIT_DIRS": str(quadlet_dir)}
    out = base / "out"
    edited = yaml_dir / "app0000.yaml"
    samples: dict[str, list[float]] = {
        "hostctl cold": [], "hostctl cached": [], "hostctl 1 edit": [], "console cached": [],
        "compiled cached": [], "compiled 1 edit": [], "quadlet": [], "python floor": []}
    program = base / "hostctl-generator"
    program.write_text(script())
    program.chmod(0o755)
    gen = [str(program)]
    compiled, problem = gencompile.build(str(program), base / "compiled")
    if compiled is None:
        raise SystemExit(f"cannot build the compiled generator: {problem}")
    floor = [sys.executable, "-sSE", "-c", "import sys, os; os.makedirs(sys.argv[1])"]
    for run in range(runs):
        samples["python floor"].append(timed(floor, env, out, 0))
        shutil.rmtree(cache, ignore_errors=True)
        samples["hostctl cold"].append(timed(gen, env, out, count))
        samples["hostctl cached"].append(timed(gen, env, out, count))
        samples["console cached"].append(timed([str(CONSOLE_SCRIPT)], env, out, count))
        timed([str(compiled)], env, out, count)  # its first run falls back: the fast cache
        samples["compiled cached"].append(timed([str(compiled)], env, out, count))
        edited.write_text(edited.read_text() + f"# edit {run}\n")
        samples["hostctl 1 edit"].append(timed(gen, env, out, count))
        edited.write_text(edited.read_text() + f"# edit {run} again\n")
        samples["compiled 1 edit"].append(timed([str(compiled)], env, out, count))
        if quadlet is not None:
            samples["quadlet"].append(timed([str(quadlet)], qenv, out, count))
    return {peer: statistics.median(times) for peer, times in samples.items() if times}


def import_ms(module: str, lean: bool) -> float:
    """Cumulative import time of MODULE in a fresh interpreter (python -X importtime),
    LEAN: started as the generator script is (-sSE, no site)."""
    flags = ["-sSE"] if lean else []
    code = f"import sys; sys.path[0] = {str(REPO)!r}; import {module}"
    done = subprocess.run([sys.executable, *flags, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)
    for line in done.stderr.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1000
    return float("nan")


def ratio(value: float, peer: float | None) -> str:
    return f"{value / peer:5.2f}x" if peer else "   - "


def report(results: dict[int, dict[str, float]], problem: str | None) -> None:
    print(f"\n{'decls':>6} {'peer':16} {'ms':>9} {'vs quadlet':>11}")
    for count, peers in results.items():
        quad = peers.get("quadlet")
        for peer, seconds in peers.items():
            print(f"{count:>6} {peer:16} {seconds * 1000:9.1f} {ratio(seconds, quad):>11}")
    if problem:
        print(f"\nquadlet not measured: {problem}")
    print("\nimport time (cumulative, ms):")
    for module, lean, what in (("hostctl.units.generator", True, "cache hit (-sSE)"),
                               ("hostctl.units.build", False, "render (yaml, jinja2, readers)")):
        print(f"  {module:26} {import_ms(module, lean):7.1f}  {what}")
    checks: list[tuple[str, Callable[[], bool]]] = []
    if 1000 in results and "quadlet" in results[1000]:
        big = results[1000]
        checks.append(("1000 cached <= quadlet",
                       lambda: big["hostctl cached"] <= big["quadlet"]))
        checks.append(("1000 compiled cached <= quadlet",
                       lambda: big["compiled cached"] <= big["quadlet"]))
    if 1 in results and "quadlet" in results[1]:
        one = results[1]
        checks.append(("1 declaration cached <= 1.5x quadlet",
                       lambda: one["hostctl cached"] <= 1.5 * one["quadlet"]))
        checks.append(("1 declaration compiled <= 1.5x quadlet",
                       lambda: one["compiled cached"] <= 1.5 * one["quadlet"]))
    print(f"\nload average: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print("\ntargets:")
    for label, check in checks:
        print(f"  {label:32} {'met' if check() else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--quadlet", type=Path, help="quadlet binary (default: fetch it)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="where the podman package is kept")
    args = parser.parse_args()
    binary: Path = args.quadlet or fetch_quadlet(args.cache)
    problem = quadlet_problem(binary)
    quadlet = None if problem else binary
    results = {}
    with tmpfs() as base:
        for count in args.counts:
            results[count] = measure(count, args.runs, quadlet, base)
            print(f"{count} declarations measured", file=sys.stderr)
    report(results, problem)


if __name__ == "__main__":
    main()
