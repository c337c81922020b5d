"""Build speed and memory: `hostctl build` vs `buildah bud --layers` (1.28), same run.

The reference Containerfile: FROM a busybox base served by a loopback docker-registry,
COPY of a few thousand small files and of one 200 MB file, three RUN steps (one
writing 500 MB), and a second stage that COPY --froms two results. Timed for each
builder, from an empty store (its own HOSTCTL_STATE_DIR / buildah --root):
  cold      the first build
  cached    the same build again (every step from the cache)
  one file  after changing the content of one small source file
Each build runs under /usr/bin/time: wall seconds and the peak resident set of the
largest process of that build. With --repeat N the builders take turns N times and
each one's best time is kept. Targets (issue 13): cold <= 0.6x buildah, cached <= 0.2x,
one file <= 0.5x, peak memory under 200 MB.

    sudo .venv/bin/python bench/build.py [--files 3000] [--big-mb 200] [--run-mb 500]
        [--repeat 1] [--storage-driver overlay]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.imagebuild import busybox_image, push
from tests.support.registry import Registry

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
CONTAINERFILE = """\
FROM {base} AS build
COPY src/ /app/src/
COPY big.bin /app/big.bin
RUN dd if=/dev/urandom of=/app/written.bin bs=1M count={run_mb} 2>/dev/null
RUN find /app/src -type f | wc -l > /app/count
RUN sha256sum /app/big.bin > /app/big.sum

FROM {base}
COPY --from=build /app/count /app/big.sum /out/
"""
PHASES = ("cold", "cached", "one file")


@dataclass
class Run:
    seconds: float
    peak_mb: float


def make_context(root: Path, files: int, big_mb: int, run_mb: int, base: str) -> Path:
    context = root / "context"
    for number in range(files):
        directory = context / "src" / f"d{number // 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{number:05d}.txt").write_bytes(os.urandom(600) + b"\n")
    with open(context / "big.bin", "wb") as handle:
        for _ in range(big_mb):
            handle.write(os.urandom(1 << 20))
    (context / "Containerfile").write_text(CONTAINERFILE.format(base=base, run_mb=run_mb))
    return context


def measured(argv: list[str], env: dict[str, str], work: Path) -> Run:
    report = work / "time.out"
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(report), *argv],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode()[-2000:]}")
    seconds, kilobytes = report.read_text().split()[-2:]
    return Run(float(seconds), int(kilobytes) / 1024)


def hostctl_phases(context: Path, work: Path) -> list[Run]:
    state = work / "hostctl-state"
    env = {**os.environ, "HOSTCTL_STATE_DIR": str(state)}
    argv = [HOSTCTL, "build", "-t", "bench:1", str(context)]
    try:
        return _phases(argv, env, context, work)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def buildah_phases(context: Path, work: Path, driver: str) -> list[Run]:
    storage = ["--root", str(work / "buildah"), "--runroot", str(work / "buildah-run"),
               "--storage-driver", driver]
    argv = ["buildah", *storage, "bud", "--layers", "--quiet", "--tls-verify=false",
            "--isolation", "oci", "--runtime", "runc", "--network", "host",
            "-t", "localhost/bench:1", str(context)]
    try:
        return _phases(argv, dict(os.environ), context, work)
    finally:
        subprocess.run(["buildah", *storage, "rm", "--all"], capture_output=True, check=False)
        subprocess.run(["buildah", *storage, "rmi", "--all", "--force"], capture_output=True,
                       check=False)
        subprocess.run(["umount", "-R", str(work / "buildah")], capture_output=True,
                       check=False)
        shutil.rmtree(work / "buildah", ignore_errors=True)
        shutil.rmtree(work / "buildah-run", ignore_errors=True)


def _phases(argv: list[str], env: dict[str, str], context: Path, work: Path) -> list[Run]:
    changed = context / "src" / "d000" / "f00000.txt"
    original = changed.read_bytes()
    try:
        cold = measured(argv, env, work)
        cached = measured(argv, env, work)
        changed.write_bytes(os.urandom(600) + b"\n")
        one = measured(argv, env, work)
    finally:
        changed.write_bytes(original)
    return [cold, cached, one]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--run-mb", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--storage-driver", default="overlay",
                        help="buildah's storage driver (overlay or vfs)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (mounts, runc)")
    with tempfile.TemporaryDirectory(prefix="hostctl-bench-build-", dir="/var/tmp") as tmp, \
            Registry() as registry:
        work = Path(tmp)
        push(registry.host, "bench/base", "1", busybox_image())
        base = f"{registry.host}/bench/base:1"
        context = make_context(work, options.files, options.big_mb, options.run_mb, base)
        best: dict[str, list[Run]] = {}
        for _ in range(options.repeat):
            for name in ("hostctl", "buildah"):
                runs = (hostctl_phases(context, work) if name == "hostctl"
                        else buildah_phases(context, work, options.storage_driver))
                best[name] = runs if name not in best else [
                    Run(min(a.seconds, b.seconds), max(a.peak_mb, b.peak_mb))
                    for a, b in zip(best[name], runs, strict=True)]
    print(f"{options.files} small files, {options.big_mb} MB file, RUN writing "
          f"{options.run_mb} MB; best of {options.repeat}")
    print(f"{'phase':10} {'hostctl s':>10} {'MB':>6} {'buildah s':>10} {'MB':>6} {'ratio':>6}")
    for number, phase in enumerate(PHASES):
        ours, theirs = best["hostctl"][number], best["buildah"][number]
        print(f"{phase:10} {ours.seconds:10.2f} {ours.peak_mb:6.0f} {theirs.seconds:10.2f} "
              f"{theirs.peak_mb:6.0f} {ours.seconds / theirs.seconds:6.2f}")


if __name__ == "__main__":
    main()
