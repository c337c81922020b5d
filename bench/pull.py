"""Pull speed: hostctl vs skopeo copy + umoci unpack vs podman pull vs the floor.

Builds an image from this machine's /usr (debootstrap needs more time than a bench run
should take; pass --dirs to choose), 4-5 gzip layers (one of many small files), serves it
from a loopback docker-registry and times, from an empty store each time:
  hostctl   hostctl.images.pull.pull (to applied snapshots), in a subprocess (peak RSS)
  skopeo+umoci  skopeo copy docker://... oci:DIR, then umoci unpack
  podman    podman pull with a throwaway --root (if podman is installed)
  floor     the layer blobs through pigz -d (or igzip -d) into tar -x, one after another
Prints seconds and ratios. Usage: .venv/bin/python bench/pull.py [--dirs usr/lib usr/share]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.imagebuild import push_blob, push_manifest
from tests.support.registry import Registry

DEFAULT_DIRS = ["usr/bin", "usr/share/doc", "usr/lib/python3", "usr/lib/x86_64-linux-gnu",
                "usr/share/locale"]


def build_layer(directory: str, work: Path) -> tuple[bytes, str]:
    tar = subprocess.run(["tar", "-C", "/", "-cf", "-", directory], capture_output=True,
                         check=True).stdout
    blob = subprocess.run(["pigz", "-6"], input=tar, capture_output=True, check=True).stdout
    return blob, "sha256:" + hashlib.sha256(tar).hexdigest()


def push_image(host: str, dirs: list[str], work: Path) -> tuple[list[Path], int]:
    layers, diff_ids, files = [], [], []
    for number, directory in enumerate(dirs):
        blob, diff_id = build_layer(directory, work)
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


def timed(argv: list[str], **kwargs: object) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dirs", nargs="+", default=DEFAULT_DIRS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hostctl-bench-", dir="/var/tmp"))
    results: dict[str, float] = {}
    with Registry() as reg:
        files, size = push_image(reg.host, [d for d in args.dirs if Path("/", d).is_dir()], work)
        ref = f"{reg.host}/bench/usr:1"
        print(f"image: {len(files)} layers, {size / 1e6:.0f} MB compressed", flush=True)
        code = ("import sys; from hostctl.images.pull import pull; "
                "from hostctl.images.store import Store; pull(Store(sys.argv[1]), sys.argv[2])")
        results["hostctl"] = timed([sys.executable, "-c", code, str(work / "store"), ref])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        shutil.rmtree(work / "store", ignore_errors=True)
        results["skopeo+umoci"] = timed(
            ["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{work}/oci:1"]
        ) + timed(["umoci", "unpack", "--image", f"{work}/oci:1", str(work / "bundle")])
        shutil.rmtree(work / "oci")
        shutil.rmtree(work / "bundle")
        if shutil.which("podman"):
            root = work / "podman"
            results["podman"] = timed(["podman", "--root", str(root), "--runroot",
                                       str(work / "podrun"), "--storage-driver", "overlay",
                                       "pull", "--tls-verify=false", ref])
            subprocess.run(["podman", "--root", str(root), "--runroot", str(work / "podrun"),
                            "system", "reset", "-f"], capture_output=True, check=False)
            shutil.rmtree(root, ignore_errors=True)
        unzip = "igzip" if shutil.which("igzip") else "pigz"
        out = work / "floor"
        out.mkdir()
        started = time.monotonic()
        for path in files:
            subprocess.run(f"{unzip} -dc {path} | tar -C {out} -xf -", shell=True, check=True)
        results["floor"] = time.monotonic() - started
    finally_cleanup(work)
    for name, seconds in results.items():
        print(f"{name:14} {seconds:7.2f} s")
    print(f"hostctl peak RSS {peak:.0f} MB (target < 150)")
    if "podman" in results:
        print(f"hostctl / podman = {results['hostctl'] / results['podman']:.2f} (target <= 0.6)")
    print(f"hostctl / skopeo+umoci = {results['hostctl'] / results['skopeo+umoci']:.2f}")
    print(f"hostctl / floor = {results['hostctl'] / results['floor']:.2f} (target <= 1.5)")


def finally_cleanup(work: Path) -> None:
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (umoci unpack and podman need it)")
    main()
