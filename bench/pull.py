"""Pull speed and memory: hostctl vs skopeo copy + umoci unpack vs podman pull vs the floor.

Builds an image from this machine's /usr (debootstrap needs more time than a bench run
should take; pass --dirs to choose), 4-5 gzip layers (one of many small files), serves it
from a loopback docker-registry and times, from an empty store each time:
  hostctl       hostctl.images.pull.pull (to applied snapshots), in its own process
  skopeo+umoci  skopeo copy docker://... oci:DIR, then umoci unpack
  podman        podman pull with a throwaway --root (if podman is installed)
  floor         every layer at once: curl from the registry | igzip -d | tar -x, each into
                its own directory (what a first start that pulls cannot beat)
Before each run the page cache is dropped (after a sync), and each run ends with a sync
that is part of its time: the bytes are on disk, as a pull that survives a power cut
needs. Each peer runs under /usr/bin/time, so its peak memory is its own: the largest
resident set of any one process of that peer (wait4's ru_maxrss), never another peer's.
With --repeat N the peers take turns N times and each one's best time is kept (the
machine may be busy with other work: turns spread the noise over all peers alike).
Prints seconds, peak memory and ratios.
With --baseline DIR, "hostctl@DIR" also takes turns: the same pull with the hostctl of
another checkout (what a change bought).
Usage: .venv/bin/python bench/pull.py [--dirs usr/lib usr/share] [--peers hostctl floor]
       [--repeat 3] [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.imagebuild import push_blob, push_manifest
from tests.support.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = ["usr/bin", "usr/share/doc", "usr/lib/python3", "usr/lib/x86_64-linux-gnu",
                "usr/share/locale"]
PEERS = ("hostctl", "skopeo+umoci", "podman", "floor")
PULL = ("import sys; from hostctl.images.pull import pull; "
        "from hostctl.images.store import Store; pull(Store(sys.argv[1]), sys.argv[2])")


@dataclass
class Run:
    seconds: float = 0.0
    peak_mb: float = 0.0

    def add(self, other: Run) -> None:
        self.seconds += other.seconds
        self.peak_mb = max(self.peak_mb, other.peak_mb)

    def best(self, other: Run) -> Run:
        return Run(min(self.seconds, other.seconds), max(self.peak_mb, other.peak_mb))


def build_layer(directory: str) -> tuple[bytes, str]:
    tar = subprocess.run(["tar", "-C", "/", "-cf", "-", directory], capture_output=True,
                         check=True).stdout
    blob = subprocess.run(["pigz", "-6"], input=tar, capture_output=True, check=True).stdout
    return blob, "sha256:" + hashlib.sha256(tar).hexdigest()


def push_image(host: str, dirs: list[str], work: Path) -> tuple[list[str], int]:
    """Push an image of DIRS; the URLs of its layer blobs and their total size."""
    layers, diff_ids, files, urls = [], [], [], []
    for number, directory in enumerate(dirs):
        blob, diff_id = build_layer(directory)
        path = work / f"layer{number}.tar.gz"
        path.write_bytes(blob)
        files.append(path)
        digest = push_blob(host, "bench/usr", blob)
        urls.append(f"http://{host}/v2/bench/usr/blobs/{digest}")
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": digest, "size": len(blob)})
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": push_blob(host, "bench/usr", config),
                           "size": len(config)}, "layers": layers}
    push_manifest(host, "bench/usr", "1", json.dumps(manifest).encode(),
                  "application/vnd.oci.image.manifest.v1+json")
    size = sum(f.stat().st_size for f in files)
    for path in files:
        path.unlink()
    return urls, size


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def measured(argv: list[str], work: Path) -> Run:
    """Run ARGV then sync under /usr/bin/time, from a dropped page cache: wall seconds
    and its own peak resident set."""
    report = work / "time.out"
    drop_caches()
    subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(report),
                    "sh", "-ec", '"$@"; sync', "sh", *argv], check=True,
                   stdout=subprocess.DEVNULL)
    seconds, kilobytes = report.read_text().split()[-2:]
    return Run(float(seconds), int(kilobytes) / 1024)


def run_hostctl(ref: str, work: Path, urls: list[str], checkout: Path = ROOT) -> Run:
    try:
        return measured(["env", f"PYTHONPATH={checkout}", sys.executable, "-c", PULL,
                         str(work / "store"), ref], work)
    finally:
        shutil.rmtree(work / "store", ignore_errors=True)


def run_skopeo_umoci(ref: str, work: Path, urls: list[str]) -> Run:
    result = measured(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}",
                       f"oci:{work}/oci:1"], work)
    result.add(measured(["umoci", "unpack", "--image", f"{work}/oci:1", str(work / "bundle")],
                        work))
    shutil.rmtree(work / "oci")
    shutil.rmtree(work / "bundle")
    return result


def run_podman(ref: str, work: Path, urls: list[str]) -> Run:
    base = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podrun"),
            "--storage-driver", "overlay"]
    try:
        return measured([*base, "pull", "--quiet", "--tls-verify=false", ref], work)
    finally:
        subprocess.run([*base, "system", "reset", "-f"], capture_output=True, check=False)
        shutil.rmtree(work / "podman", ignore_errors=True)


def run_floor(ref: str, work: Path, urls: list[str]) -> Run:
    unzip = "igzip" if shutil.which("igzip") else "pigz"
    out = work / "floor"
    script = " ".join(f"mkdir -p {out}/{number}; curl -sf {url} | {unzip} -dc | "
                      f"tar -C {out}/{number} -xf - &"
                      for number, url in enumerate(urls)) + " wait"
    try:
        return measured(["sh", "-ec", script], work)
    finally:
        shutil.rmtree(out, ignore_errors=True)


RUNNERS: dict[str, Callable[[str, Path, list[str]], Run]] = {
    "hostctl": run_hostctl, "skopeo+umoci": run_skopeo_umoci, "podman": run_podman,
    "floor": run_floor}


def report(results: dict[str, Run]) -> None:
    print("load average: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    for name, run in results.items():
        print(f"{name:14} {run.seconds:7.2f} s   peak {run.peak_mb:6.0f} MB")
    if "hostctl" not in results:
        return
    ours = results["hostctl"]
    print(f"hostctl peak memory {ours.peak_mb:.0f} MB (target < 150)")
    targets = {"podman": " (target <= 0.5)", "floor": " (how close to the floor)"}
    for peer in ("podman", "skopeo+umoci", "floor", *[p for p in results if "@" in p]):
        if peer in results:
            print(f"hostctl / {peer} = {ours.seconds / results[peer].seconds:.2f}"
                  f"{targets.get(peer, '')}")


# The tools each part of the bench runs, with the Debian package that has them.
TOOLS = {"pigz": "pigz", "skopeo": "skopeo", "umoci": "umoci", "tar": "tar", "curl": "curl"}


def missing_tools(peers: list[str]) -> list[str]:
    """The Debian packages to install before this bench can run PEERS (none if ready)."""
    wanted = ["pigz", "tar"]  # building the image's layers
    if "floor" in peers:
        wanted.append("curl")
    if "skopeo+umoci" in peers:
        wanted += ["skopeo", "umoci"]
    return sorted({TOOLS[tool] for tool in wanted if shutil.which(tool) is None})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dirs", nargs="+", default=DEFAULT_DIRS)
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()
    if args.baseline:
        checkout = args.baseline.resolve()
        RUNNERS[f"hostctl@{checkout}"] = (
            lambda ref, work, urls: run_hostctl(ref, work, urls, checkout))
    peers = [p for p in args.peers if p != "podman" or shutil.which("podman")]
    peers += [name for name in RUNNERS if name.startswith("hostctl@")]
    missing = missing_tools(peers)
    if missing:
        sys.exit(f"bench/pull.py needs {', '.join(missing)}: run scripts/setup.sh, or"
                 f" apt-get install {' '.join(missing)}")
    work = Path(tempfile.mkdtemp(prefix="hostctl-bench-", dir="/var/tmp"))
    results: dict[str, Run] = {}
    try:
        with Registry() as reg:
            dirs = [d for d in args.dirs if Path("/", d).is_dir()]
            urls, size = push_image(reg.host, dirs, work)
            ref = f"{reg.host}/bench/usr:1"
            print(f"image: {len(urls)} layers, {size / 1e6:.0f} MB compressed", flush=True)
            for turn in range(args.repeat):
                for peer in peers:
                    run = RUNNERS[peer](ref, work, urls)
                    results[peer] = results[peer].best(run) if peer in results else run
                    print(f"  turn {turn + 1}: {peer} {run.seconds:.2f} s", flush=True)
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    report(results)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (umoci unpack and podman need it)")
    main()
