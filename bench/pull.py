"""Pull speed and memory: hostctl vs skopeo copy + umoci unpack vs podman pull vs the floor.

Builds an image from this machine's /usr (debootstrap needs more time than a bench run
should take; pass --dirs to choose), 4-5 gzip layers (one of many small files), serves it
from a loopback docker-registry and times, from an empty store each time:
  hostctl       hostctl.images.pull.pull (to applied snapshots), in its own process
  skopeo+umoci  skopeo copy docker://... oci:DIR, then umoci unpack
  podman        podman pull with a throwaway --root (if podman is installed)
  floor         the layer blobs through igzip -d (or pigz -d) into tar -x, one after another
Each peer runs under /usr/bin/time, so its peak memory is its own: the largest resident
set of any one process of that peer (wait4's ru_maxrss), never another peer's.
With --repeat N the peers take turns N times and each one's best time is kept (the
machine may be busy with other work: turns spread the noise over all peers alike).
Prints seconds, peak memory and ratios.
Usage: .venv/bin/python bench/pull.py [--dirs usr/lib usr/share] [--peers hostctl floor]
       [--repeat 3]
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.imagebuild import push_blob, push_manifest
from tests.support.registry import Registry

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


def push_image(host: str, dirs: list[str], work: Path) -> tuple[list[Path], int]:
    layers, diff_ids, files = [], [], []
    for number, directory in enumerate(dirs):
        blob, diff_id = build_layer(directory)
        path = work / f"layer{number}.tar.gz"
        path.write_bytes(blob)
        files.append(path)
        digest = push_blob(host, "bench/usr", blob)
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
    return files, sum(f.stat().st_size for f in files)


def measured(argv: list[str], work: Path) -> Run:
    """Run ARGV under /usr/bin/time: wall seconds and its own peak resident set."""
    report = work / "time.out"
    subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(report), *argv], check=True,
                   stdout=subprocess.DEVNULL)
    seconds, kilobytes = report.read_text().split()[-2:]
    return Run(float(seconds), int(kilobytes) / 1024)


def run_hostctl(ref: str, work: Path, files: list[Path]) -> Run:
    try:
        return measured([sys.executable, "-c", PULL, str(work / "store"), ref], work)
    finally:
        shutil.rmtree(work / "store", ignore_errors=True)


def run_skopeo_umoci(ref: str, work: Path, files: list[Path]) -> Run:
    result = measured(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}",
                       f"oci:{work}/oci:1"], work)
    result.add(measured(["umoci", "unpack", "--image", f"{work}/oci:1", str(work / "bundle")],
                        work))
    shutil.rmtree(work / "oci")
    shutil.rmtree(work / "bundle")
    return result


def run_podman(ref: str, work: Path, files: list[Path]) -> Run:
    base = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podrun"),
            "--storage-driver", "overlay"]
    try:
        return measured([*base, "pull", "--quiet", "--tls-verify=false", ref], work)
    finally:
        subprocess.run([*base, "system", "reset", "-f"], capture_output=True, check=False)
        shutil.rmtree(work / "podman", ignore_errors=True)


def run_floor(ref: str, work: Path, files: list[Path]) -> Run:
    unzip = "igzip" if shutil.which("igzip") else "pigz"
    out = work / "floor"
    out.mkdir()
    script = "; ".join(f"{unzip} -dc {path} | tar -C {out} -xf -" for path in files)
    try:
        return measured(["sh", "-ec", script], work)
    finally:
        shutil.rmtree(out)


RUNNERS = {"hostctl": run_hostctl, "skopeo+umoci": run_skopeo_umoci, "podman": run_podman,
           "floor": run_floor}


def report(results: dict[str, Run]) -> None:
    for name, run in results.items():
        print(f"{name:14} {run.seconds:7.2f} s   peak {run.peak_mb:6.0f} MB")
    if "hostctl" not in results:
        return
    ours = results["hostctl"]
    print(f"hostctl peak memory {ours.peak_mb:.0f} MB (target < 150)")
    targets = {"podman": " (target <= 0.6)", "floor": " (target <= 1.5)"}
    for peer in ("podman", "skopeo+umoci", "floor"):
        if peer in results:
            print(f"hostctl / {peer} = {ours.seconds / results[peer].seconds:.2f}"
                  f"{targets.get(peer, '')}")


# The tools each part of the bench runs, with the Debian package that has them.
TOOLS = {"pigz": "pigz", "skopeo": "skopeo", "umoci": "umoci", "tar": "tar"}


def missing_tools(peers: list[str]) -> list[str]:
    """The Debian packages to install before this bench can run PEERS (none if ready)."""
    wanted = ["pigz", "tar"]  # building the image's layers
    if "skopeo+umoci" in peers:
        wanted += ["skopeo", "umoci"]
    return sorted({TOOLS[tool] for tool in wanted if shutil.which(tool) is None})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dirs", nargs="+", default=DEFAULT_DIRS)
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    peers = [p for p in args.peers if p != "podman" or shutil.which("podman")]
    missing = missing_tools(peers)
    if missing:
        sys.exit(f"bench/pull.py needs {', '.join(missing)}: run scripts/setup.sh, or"
                 f" apt-get install {' '.join(missing)}")
    work = Path(tempfile.mkdtemp(prefix="hostctl-bench-", dir="/var/tmp"))
    results: dict[str, Run] = {}
    try:
        with Registry() as reg:
            dirs = [d for d in args.dirs if Path("/", d).is_dir()]
            files, size = push_image(reg.host, dirs, work)
            ref = f"{reg.host}/bench/usr:1"
            print(f"image: {len(files)} layers, {size / 1e6:.0f} MB compressed", flush=True)
            for turn in range(args.repeat):
                for peer in peers:
                    run = RUNNERS[peer](ref, work, files)
                    results[peer] = results[peer].best(run) if peer in results else run
                    print(f"  turn {turn + 1}: {peer} {run.seconds:.2f} s", flush=True)
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    report(results)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (umoci unpack and podman need it)")
    main()
