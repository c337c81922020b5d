"""`hostctl build` against the real parts: runc for RUN steps, overlayfs snapshots, the
store, a loopback registry for the base image, and buildah 1.28 as the reference.

Each test builds into its own store (HOSTCTL_STATE_DIR) and buildah into its own
--root, both under tmp_path, so nothing is left behind.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.imagetree import FlatImage, layout_image, store_image

pytestmark = pytest.mark.integration

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "User", "WorkingDir", "ExposedPorts",
                 "Labels", "StopSignal")

MULTI = """\
# syntax=docker/dockerfile:1
ARG BASE
ARG GLOBAL=from-global
FROM $BASE AS builder
ARG GLOBAL
ARG LOCAL=local-default
ENV STAGE=builder \\
    GREETING="hello ${LOCAL}"
WORKDIR /src
COPY . .
RUN echo "$GREETING $GLOBAL ${MISSING:-fallback}" > /src/out.txt \\
 && mkdir -p /src/tree/a /src/tree/b \\
 && echo one > /src/tree/a/one && ln /src/tree/a/one /src/tree/a/one-hard \\
 && ln -s ../a/one /src/tree/b/one-link && chmod 0750 /src/tree/b

FROM $BASE
ARG LOCAL
RUN rm -rf /home/app /etc/group && mkdir -p /data/keep && echo x > /data/keep/x \\
 && echo 'builder:x:1234:1234::/home/builder:/bin/sh' >> /etc/passwd
RUN rm /data/keep/x
COPY --from=builder /src/out.txt /src/tree /opt/app/
COPY --chown=1234:1234 --chmod=640 data/config.ini /etc/app/config.ini
COPY --chown=builder data/ /srv/data/
ADD bundle.tar.gz /opt/bundle/
USER builder
WORKDIR /srv/data
ENV LOCAL_SEEN="${LOCAL}" PATH=/opt/app:$PATH
EXPOSE 8080 9000/udp
LABEL org.example.name="multi stage" version=1
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /opt/app/out.txt"]
"""


def _write_context(root: Path) -> Path:
    context = root / "context"
    (context / "data" / "sub").mkdir(parents=True)
    (context / "data" / "config.ini").write_text("[app]\nname = demo\n")
    (context / "data" / "sub" / "nested.txt").write_text("nested\n")
    (context / "data" / "secret.key").write_text("never copied\n")
    (context / "data" / "sub" / "skip.log").write_text("ignored\n")
    (context / "data" / "sub" / "keep.log").write_text("kept by exception\n")
    os.symlink("config.ini", context / "data" / "config.link")
    os.link(context / "data" / "config.ini", context / "data" / "config.hard")
    (context / ".dockerignore").write_text("data/secret.key\n**/*.log\n!data/sub/keep.log\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("bin/tool", b"#!/bin/sh\necho tool\n"), ("share/doc", b"doc\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o755, 7, 8
            tar.addfile(info, io.BytesIO(data))
    (context / "bundle.tar.gz").write_bytes(buffer.getvalue())
    (context / "Containerfile").write_text(MULTI)
    return context


def hostctl(state: Path, *args: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HOSTCTL_STATE_DIR": str(state), **(env or {})}
    environment.pop("SOURCE_DATE_EPOCH", None) if "SOURCE_DATE_EPOCH" not in (env or {}) \
        else None
    done = subprocess.run([HOSTCTL, *args], capture_output=True, text=True, env=environment,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"hostctl {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def buildah_image(root: Path, context: Path, base: str) -> FlatImage:
    if shutil.which("buildah") is None:
        pytest.skip("buildah not found (install the buildah package: scripts/setup.sh)")
    storage = ["--root", str(root / "buildah"), "--runroot", str(root / "buildah-run"),
               "--storage-driver", "vfs"]
    subprocess.run(["buildah", *storage, "bud", "--quiet", "--tls-verify=false",
                    "--isolation", "oci", "--runtime", "runc", "--network", "host",
                    "--build-arg", f"BASE={base}",
                    "-t", "localhost/reference:1", str(context)], check=True,
                   capture_output=True)
    layout = root / "layout"
    subprocess.run(["buildah", *storage, "push", "localhost/reference:1",
                    f"oci:{layout}:1"], check=True, capture_output=True)
    return layout_image(layout)


RUN_MOUNT_POINTS = ("etc/hostname", "etc/hosts", "etc/resolv.conf")


def _comparable(tree: dict[str, Any]) -> dict[str, Any]:
    """TREE without the empty /etc/hosts, /etc/hostname and /etc/resolv.conf buildah 1.28
    leaves in an image whose RUN steps needed them as mount points (hostctl removes the
    mount points it had to create)."""
    return {path: node for path, node in tree.items()
            if not (path in RUN_MOUNT_POINTS and node[0] == "file" and node[4] == 0)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, busybox_ref: str) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("build")
    context = _write_context(root)
    state = root / "state"
    result = hostctl(state, "build", "--build-arg", f"BASE={busybox_ref}", "-t", "multi:1",
                     str(context))
    return {"root": root, "context": context, "state": state, "output": result.stdout,
            "image": store_image(state / "storage", "localhost/multi:1"),
            "base": busybox_ref}


def test_same_file_tree_and_config_as_buildah(built: dict[str, Any]) -> None:
    ours: FlatImage = built["image"]
    reference = buildah_image(built["root"], built["context"], built["base"])
    ours_tree, their_tree = _comparable(ours.tree), _comparable(reference.tree)
    missing = sorted(set(their_tree) - set(ours_tree))
    extra = sorted(set(ours_tree) - set(their_tree))
    differ = sorted(p for p in set(ours_tree) & set(their_tree)
                    if ours_tree[p] != their_tree[p])
    assert (missing, extra) == ([], []), f"missing {missing}, extra {extra}"
    assert differ == [], {p: (ours_tree[p], their_tree[p]) for p in differ}
    ours_config, their_config = ours.config["config"], reference.config["config"]
    their_labels = {k: v for k, v in (their_config.get("Labels") or {}).items()
                    if not k.startswith("io.buildah.")}
    their_config = {**their_config, "Labels": their_labels}
    for field in CONFIG_FIELDS:
        assert ours_config.get(field) == their_config.get(field), field


def test_what_the_containerfile_asked_for(built: dict[str, Any]) -> None:
    tree = built["image"].tree
    assert "srv/data/secret.key" not in tree  # .dockerignore
    assert "srv/data/sub/skip.log" not in tree and "srv/data/sub/keep.log" in tree
    assert tree["srv/data/config.link"][0] == "symlink"
    assert tree["srv/data/config.link"][5] == "config.ini"
    assert tree["etc/app/config.ini"][1:4] == (0o640, 1234, 1234)
    assert tree["opt/bundle/bin/tool"][1:4] == (0o755, 7, 8)  # ADD unpacked the tar
    assert "home/app" not in tree and "etc/group" not in tree  # rm in a RUN: whiteouts
    assert "data/keep" in tree and "data/keep/x" not in tree
    assert tree["opt/app/a/one-hard"] == tree["opt/app/a/one"]
    assert tree["opt/app/b/one-link"][5] == "../a/one"
    config = built["image"].config["config"]
    assert "LOCAL_SEEN=local-default" not in config["Env"]  # LOCAL has no value here
    assert config["User"] == "builder"


def test_cache_hits_on_content_not_mtime(built: dict[str, Any]) -> None:
    state, context = built["state"], built["context"]
    args = ["build", "--build-arg", f"BASE={built['base']}", "-t", "multi:1", str(context)]
    again = hostctl(state, *args).stdout
    fs_steps = sum(1 for line in MULTI.splitlines()
                   if line.split(" ")[0] in ("RUN", "COPY", "ADD", "WORKDIR"))
    assert again.count("Using cache") == fs_steps, again
    os.utime(context / "data" / "config.ini", (1, 1))
    assert hostctl(state, *args).stdout.count("Using cache") == fs_steps
    (context / "data" / "sub" / "nested.txt").write_text("changed\n")
    changed = hostctl(state, *args).stdout
    steps = [line for line in changed.splitlines() if "STEP" in line or "Using cache" in line]
    # The first stage's COPY . . reads nested.txt: it and everything after it run again
    # (the second stage from its COPY --from of that stage on).
    copy_at = next(i for i, line in enumerate(steps) if "COPY . ." in line)
    assert all("Using cache" not in line for line in steps[copy_at + 1:copy_at + 3])
    assert "Using cache" in steps[steps.index(next(
        line for line in steps if "RUN rm -rf /home/app" in line)) + 1]
    after = store_image(state / "storage", "localhost/multi:1")
    assert after.tree["srv/data/sub/nested.txt"] != built["image"].tree[
        "srv/data/sub/nested.txt"]


def test_source_date_epoch_gives_the_same_digest(built: dict[str, Any],
                                                 tmp_path: Path) -> None:
    digests = []
    for n in (1, 2):
        done = hostctl(tmp_path / f"state{n}", "build", "--build-arg",
                       f"BASE={built['base']}", "-t", "repro:1", str(built["context"]),
                       env={"SOURCE_DATE_EPOCH": "1700000000"})
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")
    image = store_image(tmp_path / "state1" / "storage", "localhost/repro:1")
    assert image.config["created"] == "2023-11-14T22:13:20Z"


BAD = [
    ("FROM {base}\nFROBNICATE x\n", "Containerfile:2", "unknown instruction"),
    ("FROM {base}\nCOPY nothere.txt /x\n", "Containerfile:2", "not found in the build context"),
    ("FROM {base} AS a\nCOPY --from=b /x /x\nFROM a AS b\n", "Containerfile:", "stage cycle"),
    ("FROM {base}\nCOPY ../outside /x\n", "Containerfile:2", "outside the build context"),
    ("FROM {base}\nCOPY escape /x\n", "Containerfile:2", "leads outside the build context"),
    ("ARG V\nFROM {base}\nRUN echo $V\n", "Containerfile:3", "used before it is declared"),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD)
def test_bad_input_is_a_clear_error_and_stores_nothing(
        text: str, where: str, message: str, busybox_ref: str, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (tmp_path / "outside").write_text("secret\n")
    os.symlink("/etc/passwd", context / "escape")
    (context / "Containerfile").write_text(text.format(base=busybox_ref))
    state = tmp_path / "state"
    done = hostctl(state, "build", "-t", "bad:1", "--build-arg", "V=1", str(context),
                   check=False)
    assert done.returncode != 0
    assert where in done.stderr and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    index = state / "storage" / "images.json"
    assert not index.exists() or "bad" not in index.read_text()
    assert not list((state / "storage").glob(".tmp-build-*"))


def test_failing_run_names_its_exit_status(busybox_ref: str, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text(f"FROM {busybox_ref}\nRUN echo partial; exit 3\n")
    done = hostctl(tmp_path / "state", "build", "-t", "fails:1", str(context), check=False)
    assert done.returncode != 0
    assert "Containerfile:2: RUN: the command failed with exit status 3" in done.stderr
    assert "partial" in done.stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path) not in mounts
    assert json.loads((tmp_path / "state" / "storage" / "images.json").read_text())[
        "images"].keys() == {busybox_ref}


def test_built_image_runs_as_a_declared_unit(test_host: Any, busybox_ref: str) -> None:
    from tests.integration.test_e2e import declare, wait_journal

    test_host.run([HOSTCTL, "install"])
    test_host.write_file("/srv/ctx/Containerfile", f"""\
FROM {busybox_ref}
RUN echo built-content > /msg
COPY note.txt /note.txt
CMD ["sh", "-c", "cat /msg /note.txt; echo run-done; exec sleep 600"]
""")
    test_host.write_file("/srv/ctx/note.txt", "from-the-context\n")
    test_host.run([HOSTCTL, "build", "-t", "built:1", "/srv/ctx"])
    declare(test_host, "built", "image: localhost/built:1\nstop_timeout: 1\n")
    test_host.run(["systemctl", "start", "built"])
    journal = wait_journal(test_host, "built.service", "run-done")
    assert "built-content" in journal and "from-the-context" in journal
    test_host.run(["systemctl", "stop", "built"])
