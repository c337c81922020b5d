"""Push and copy speed: hostctl vs skopeo, side by side in the same run.

Builds a 5-layer image of about 330 MB (gzip layers of incompressible data, so nobody's
compressor matters), stores it in a hostctl store (pulled from an OCI layout) and times:
  store -> registry   `hostctl push` from the store vs `skopeo copy oci:LAYOUT` (skopeo's
                      nearest local source), each into a new empty loopback registry
  registry->registry  `hostctl image copy docker://A docker://B` vs `skopeo copy`, B new
                      and empty each time (a separate registry: no cross-repository mount)
  second push         the same push again, every blob already there
Each command's wall time is taken with a monotonic clock around it (the second push
takes tens of milliseconds: /usr/bin/time's 10 ms steps are too coarse), its peak RSS
and CPU seconds from /usr/bin/time. The second push runs SECOND times per turn. With
--repeat N the peers take turns N times and each keeps its best time. With --baseline
CHECKOUT the hostctl of another checkout (CHECKOUT/.venv/bin/hostctl) takes turns too:
what a change bought.
Usage: .venv/bin/python bench/push.py [--repeat 3] [--layer-mb 66] [--second 5]
       [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.registry import Registry

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
TARGETS = {"store -> registry": 0.7, "registry -> registry": 0.7, "second push": 0.5}


@dataclass
class Run:
    seconds: float
    peak_mb: float
    cpu: float = 0.0  # user + system seconds: steadier than wall time on a busy machine


def build_layout(directory: Path, layers: int, layer_mb: int) -> None:
    """An OCI layout tagged "bench": LAYERS gzip layers of LAYER_MB random bytes each."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    descriptors, diff_ids = [], []
    for number in range(layers):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = os.urandom(layer_mb * 1000 * 1000)
            info = tarfile.TarInfo(f"data/layer{number}")
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        plain = raw.getvalue()
        blob = _gzip(plain)
        diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
        descriptors.append(_write(blobs, blob, "application/vnd.oci.image.layer.v1.tar+gzip"))
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": _write(blobs, config,
                                            "application/vnd.oci.image.config.v1+json"),
                           "layers": descriptors}).encode()
    top = _write(blobs, manifest, "application/vnd.oci.image.manifest.v1+json")
    top["annotations"] = {"org.opencontainers.image.ref.name": "bench"}
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                      "manifests": [top]}))


def _gzip(data: bytes) -> bytes:
    try:
        from isal import igzip

        return bytes(igzip.compress(data, 1, mtime=0))
    except ImportError:
        import gzip

        return gzip.compress(data, 1, mtime=0)


def _write(blobs: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def measured(argv: list[str], work: Path, env: dict[str, str]) -> Run:
    """ARGV's wall time (a monotonic clock around it), peak RSS and CPU seconds (from
    /usr/bin/time: its child is forked from it, not from this big process)."""
    report = work / "time.out"
    started = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(report), *argv], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    seconds = time.perf_counter() - started
    kilobytes, user, system = report.read_text().split()[-3:]
    return Run(seconds, int(kilobytes) / 1024, float(user) + float(system))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--layer-mb", type=int, default=66)
    parser.add_argument("--second", type=int, default=5)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()
    peers = {"hostctl": HOSTCTL, "skopeo": "skopeo"}
    if args.baseline:
        peers[f"hostctl@{args.baseline}"] = str(args.baseline / ".venv/bin/hostctl")
    work = Path(tempfile.mkdtemp(prefix="hostctl-bench-push-", dir="/var/tmp"))
    env = {**os.environ, "HOSTCTL_STATE_DIR": str(work / "state"),
           "HOSTCTL_CONFIG_DIR": str(work / "conf"), "HOSTCTL_RUN_DIR": str(work / "run")}
    try:
        layout = work / "layout"
        build_layout(layout, 5, args.layer_mb)
        size = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
        print(f"image: 5 layers, {size / 1e6:.0f} MB")
        stored = f"oci:{layout}:bench"
        subprocess.run([HOSTCTL, "pull", stored], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best: dict[tuple[str, str], Run] = {}
        with Registry() as source:
            subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", stored,
                            f"docker://{source.host}/bench/src:1"], check=True,
                           stdout=subprocess.DEVNULL)
            for turn in range(args.repeat):
                for name, run in one_turn(work, env, stored, source.host, turn, peers,
                                          args.second).items():
                    if name not in best or run.seconds < best[name].seconds:
                        best[name] = run
        report(best, [p for p in peers if p != "skopeo"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def one_turn(work: Path, env: dict[str, str], stored: str, source: str, turn: int,
             peers: dict[str, str], second: int) -> dict[tuple[str, str], Run]:
    results: dict[tuple[str, str], Run] = {}
    order = list(peers) if turn % 2 == 0 else list(reversed(peers))
    for peer in order:
        tool = peers[peer]
        with Registry() as dest:
            target = f"docker://{dest.host}/bench/pushed:1"
            push = [tool, "push", stored, target] if peer != "skopeo" else \
                ["skopeo", "copy", "--dest-tls-verify=false", stored, target]
            results[("store -> registry", peer)] = measured(push, work, env)
            again = [measured(push, work, env) for _ in range(max(1, second))]
            results[("second push", peer)] = min(again, key=lambda run: run.seconds)
        with Registry() as dest:
            src, dst = f"docker://{source}/bench/src:1", f"docker://{dest.host}/bench/c:1"
            copy = [tool, "image", "copy", src, dst] if peer != "skopeo" else \
                ["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                 src, dst]
            results[("registry -> registry", peer)] = measured(copy, work, env)
        print(f"  turn {turn + 1}: {peer}: " + ", ".join(
            f"{case} {run.seconds:.3f} s (cpu {run.cpu:.2f})"
            for (case, who), run in results.items()
            if who == peer), flush=True)
    return results


def report(best: dict[tuple[str, str], Run], ours: list[str]) -> None:
    print("load average: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    for case, target in TARGETS.items():
        theirs = best[(case, "skopeo")]
        for peer in ours:
            run = best[(case, peer)]
            print(f"{case:22} {peer} {run.seconds:7.3f} s ({run.peak_mb:4.0f} MB, cpu "
                  f"{run.cpu:.2f} s)   skopeo {theirs.seconds:7.3f} s ({theirs.peak_mb:4.0f} "
                  f"MB, cpu {theirs.cpu:.2f} s)   ratio {run.seconds / theirs.seconds:.2f} "
                  f"(target <= {target})")


if __name__ == "__main__":
    main()
