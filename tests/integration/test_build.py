"""`hostctl build` against the real parts: runc for RUN steps, overlayfs snapshots, the
store, a loopback registry for the base image, and buildah 1.28 as the reference.

Each test builds into its own store (HOSTCTL_STATE_DIR) and buildah into its own
--root, both under tmp_path, so nothing is left behind.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
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
    changed = hostctl(state, *args[:-1], "--explain-cache", args[-1]).stdout
    assert "--> cache miss: changed: the content of its sources" in changed
    assert "--> cache miss: the state before it changed" in changed
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
    # The snapshots builds keep are sound store snapshots.
    assert "store verified" in hostctl(state, "image", "verify").stdout


def test_source_date_epoch_gives_the_same_digest(built: dict[str, Any],
                                                 tmp_path: Path) -> None:
    digests = []
    for n in (1, 2):
        done = hostctl(tmp_path / f"state{n}", "build", "--build-arg",
                       f"BASE={built['base']}", "-t", "repro:1", str(built["context"]),
                       env={"SOURCE_DATE_EPOCH": "1700000000"})
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1] and digests[0].startswith("sha256:"), \
        _what_differs(tmp_path / "state1" / "storage", tmp_path / "state2" / "storage",
                      "localhost/repro:1")
    image = store_image(tmp_path / "state1" / "storage", "localhost/repro:1")
    assert image.config["created"] == "2023-11-14T22:13:20Z"
    # A layer cached by a build without the timestamp is not reused by one with it.
    state = tmp_path / "state3"
    args = ["build", "--build-arg", f"BASE={built['base']}", "-t", "repro:1",
            str(built["context"])]
    hostctl(state, *args)
    again = hostctl(state, *args, env={"SOURCE_DATE_EPOCH": "1700000000"}).stdout
    assert "Using cache" not in again and again.strip().splitlines()[-1] == digests[0]


def _what_differs(first: Path, second: Path, reference: str) -> str:
    """Where two builds of REFERENCE in the stores FIRST and SECOND differ: the config's
    keys, and each differing layer's entries (name, type, mode, owner, mtime, size, link,
    content digest), for a failure that can be read."""
    def blob(store: Path, digest: str) -> bytes:
        return (store / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    def manifest(store: Path) -> dict[str, Any]:
        index = json.loads((store / "images.json").read_text())["images"]
        return dict(json.loads(blob(store, index[reference]["manifest"])))

    def entries(data: bytes) -> dict[str, tuple[object, ...]]:
        found: dict[str, tuple[object, ...]] = {}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
            for info in tar:
                content = tar.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
                found[info.name] = (info.type, oct(info.mode), info.uid, info.gid, info.mtime,
                                    info.size, info.linkname, sha256_hex(content),
                                    sorted(info.pax_headers.items()))
        return found

    lines = []
    ours, theirs = manifest(first), manifest(second)
    config = [json.loads(blob(store, m["config"]["digest"])) for store, m in
              ((first, ours), (second, theirs))]
    for key in sorted(set(config[0]) | set(config[1])):
        if config[0].get(key) != config[1].get(key):
            lines.append(f"config {key}: {config[0].get(key)!r} != {config[1].get(key)!r}")
    for index, (a, b) in enumerate(zip(ours["layers"], theirs["layers"], strict=False)):
        if a["digest"] == b["digest"]:
            continue
        left, right = entries(blob(first, a["digest"])), entries(blob(second, b["digest"]))
        lines.append(f"layer {index}: {a['digest']} != {b['digest']}")
        lines += [f"  {name}: {left.get(name)} != {right.get(name)}"
                  for name in sorted(set(left) | set(right)) if left.get(name) != right.get(name)]
        if list(left) != list(right):
            lines.append(f"  order: {list(left)} != {list(right)}")
    return "\n".join(lines) or "manifests differ in nothing but their digests"


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


BAD = [
    ("FROM {base}\nFROBNICATE x\n", "Containerfile:2", "unknown instruction"),
    ("FROM {base}\nCOPY nothere.txt /x\n", "Containerfile:2", "not found in the build context"),
    ("FROM {base} AS a\nCOPY --from=b /x /x\nFROM a AS b\n", "Containerfile:", "stage cycle"),
    ("FROM {base}\nCOPY ../outside /x\n", "Containerfile:2", "outside the build context"),
    ("FROM {base}\nCOPY escape /x\n", "Containerfile:2", "leads outside the build context"),
    ("ARG V\nFROM {base}\nRUN echo $V\n", "Containerfile:3", "used before it is declared"),
    ("FROM {base}\nUSER ghost\nRUN true\n", "Containerfile:3: RUN: USER ghost",
     "not found in the image's /etc/passwd"),
    ("FROM {base}\nCOPY --chown=ghost Containerfile /x\n", "Containerfile:2: COPY",
     "--chown=ghost"),
    ("FROM {base}\nRUN --mount=type=nfs,target=/x true\n", "Containerfile:2: RUN",
     "type=nfs is not supported"),
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
    ran = test_host.run([HOSTCTL, "run", "--rm", "--network", "host", "localhost/built:1",
                         "cat", "/msg", "/note.txt"])
    assert ran.stdout == "built-content\nfrom-the-context\n"


SECOND = """\
ARG BASE
FROM $BASE
ARG TARGETARCH
SHELL ["/bin/sh", "-e", "-c"]
RUN mkdir -p /data/old && echo a > /data/old/a && echo b > /data/b
RUN rm -rf /data/old && mkdir /data/old && echo new > /data/old/new \\
 && chmod 600 /etc/passwd && ln /etc/group /etc/group-link \\
 && rm /bin/ls && ln -s /bin/busybox /bin/ls2 && echo "$TARGETARCH" > /arch
COPY data/*.ini /etc/
RUN mkdir -p /real/lib && ln -s /real/lib /linked
COPY data/sub /linked/
WORKDIR rel/dir
COPY data/sub ./copied
USER 1000:1000
VOLUME /data /cache
ENTRYPOINT exec sleep 1
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=4 CMD ["true"]
"""


def test_second_containerfile_in_docker_format_matches_buildah(
        built: dict[str, Any], tmp_path: Path) -> None:
    context = built["context"]
    (context / "Second").write_text(SECOND)
    state = tmp_path / "state"
    hostctl(state, "build", "--format", "docker", "-f", str(context / "Second"),
            "--build-arg", f"BASE={built['base']}", "-t", "second:1", str(context))
    ours = store_image(state / "storage", "localhost/second:1")
    manifest = json.loads((state / "storage" / "blobs" / "sha256" / ours.manifest_digest[7:])
                          .read_text())
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    if shutil.which("buildah") is None:
        pytest.skip("buildah not found (install the buildah package: scripts/setup.sh)")
    storage = ["--root", str(tmp_path / "buildah"), "--runroot", str(tmp_path / "brun"),
               "--storage-driver", "vfs"]
    subprocess.run(["buildah", *storage, "bud", "--quiet", "--tls-verify=false",
                    "--format", "docker", "--isolation", "oci", "--runtime", "runc",
                    "--network", "host", "--build-arg", f"BASE={built['base']}",
                    "-f", str(context / "Second"), "-t", "localhost/ref2:1", str(context)],
                   check=True, capture_output=True)
    subprocess.run(["buildah", *storage, "push", "localhost/ref2:1",
                    f"oci:{tmp_path / 'layout'}:1"], check=True, capture_output=True)
    theirs = layout_image(tmp_path / "layout")
    # The OCI layout drops Docker-only fields (Healthcheck, Shell): read them from buildah.
    docker = json.loads(subprocess.run(["buildah", *storage, "inspect", "localhost/ref2:1"],
                                       check=True, capture_output=True).stdout)
    theirs.config["config"].update({k: v for k, v in docker["Docker"]["config"].items()
                                    if k in ("Healthcheck", "Shell")})
    assert _comparable(ours.tree) == _comparable(theirs.tree)
    assert ours.tree["data/old/new"][0] == "file" and "data/old/a" not in ours.tree
    assert ours.tree["etc/passwd"][1] == 0o600
    assert ours.tree["linked"][0] == "symlink" and "real/lib/nested.txt" in ours.tree
    # Docker runs a shell-form ENTRYPOINT/CMD with the SHELL in force; buildah 1.28 uses
    # /bin/sh -c regardless. hostctl follows Docker's documented rule.
    assert ours.config["config"]["Entrypoint"] == ["/bin/sh", "-e", "-c", "exec sleep 1"]
    assert theirs.config["config"]["Entrypoint"] == ["/bin/sh", "-c", "exec sleep 1"]
    for field in (*CONFIG_FIELDS, "Volumes", "Healthcheck", "Shell"):
        if field == "Entrypoint":
            continue
        theirs_value = theirs.config["config"].get(field)
        if field == "Labels":
            theirs_value = {k: v for k, v in (theirs_value or {}).items()
                            if not k.startswith("io.buildah.")} or None
        assert ours.config["config"].get(field) == theirs_value, field


def _last_layer_names(state: Path, reference: str) -> list[str]:
    storage = state / "storage"
    index = json.loads((storage / "images.json").read_text())["images"][reference]
    manifest = json.loads((storage / "blobs" / "sha256" / index["manifest"][7:]).read_text())
    blob = storage / "blobs" / "sha256" / manifest["layers"][-1]["digest"][7:]
    with tarfile.open(blob, mode="r:gz") as tar:
        return tar.getnames()


def test_a_run_layer_holds_only_what_changed(busybox_ref: str, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text(
        f"FROM {busybox_ref}\nRUN touch /etc/newfile && chmod 700 /tmp && rm /bin/ls "
        "&& rm -rf /home/app && mkdir /home/app && touch /home/app/fresh\n")
    hostctl(tmp_path / "state", "build", "-t", "diff:1", str(context))
    names = _last_layer_names(tmp_path / "state", "localhost/diff:1")
    # etc/ and bin/ were only copied up: left out; tmp/ changed mode; home/app is opaque.
    assert sorted(names) == ["bin/.wh.ls", "etc/newfile", "home/app",
                             "home/app/.wh..wh..opq", "home/app/fresh", "tmp"]


MOUNTS = """\
FROM {base}
RUN --mount=type=cache,target=/var/cache/app \\
    echo run >> /var/cache/app/count && wc -l < /var/cache/app/count > /cache-count
RUN --mount=type=bind,source=data,target=/ctx cat /ctx/config.ini > /from-bind \\
 && ! touch /ctx/written 2>/dev/null
RUN --mount=type=tmpfs,target=/scratch echo gone > /scratch/file && test -f /scratch/file
RUN --mount=type=secret,id=token cat /run/secrets/token > /secret-seen-len \\
 && wc -c < /run/secrets/token > /secret-len && rm /secret-seen-len
RUN --network=none ls /sys/class/net > /net-none
RUN <<EOF
echo heredoc-line-1 > /heredoc
echo heredoc-line-2 >> /heredoc
EOF
RUN <<SCRIPT
#!/bin/busybox sh
echo "run as a file: $0" > /shebang
SCRIPT
ENV WHO=world
COPY <<EOF /greeting
hello $WHO
EOF
"""


def test_run_mounts_network_and_heredocs(busybox_ref: str, tmp_path: Path) -> None:
    context = tmp_path / "context"
    (context / "data").mkdir(parents=True)
    (context / "data" / "config.ini").write_text("bound\n")
    (context / "Containerfile").write_text(MOUNTS.format(base=busybox_ref))
    secret = tmp_path / "token"
    secret.write_text("s3cret-token")
    state = tmp_path / "state"
    args = ["build", "--secret", f"id=token,src={secret}", "-t", "mounts:1", str(context)]
    first = hostctl(state, *args).stdout
    hostctl(state, *args[:-1], "--no-cache", str(context))
    tree = store_image(state / "storage", "localhost/mounts:1").tree
    assert "var/cache/app/count" not in tree and "ctx/config.ini" not in tree
    assert "scratch/file" not in tree and "run/secrets/token" not in tree
    blobs = state / "storage" / "blobs" / "sha256"
    assert not any(b"s3cret-token" in _plain(p) for p in blobs.iterdir())
    flat = _file_contents(state, "localhost/mounts:1")
    assert flat["cache-count"] == b"2\n"  # the cache mount kept the first build's line
    assert flat["from-bind"] == b"bound\n"
    assert flat["secret-len"] == b"12\n"
    assert flat["net-none"] == b"lo\n"
    assert flat["heredoc"] == b"heredoc-line-1\nheredoc-line-2\n"
    assert flat["greeting"] == b"hello world\n"
    assert flat["shebang"] == b"run as a file: /dev/pipes/SCRIPT\n"
    assert "dev/pipes" not in tree
    assert "Using cache" not in first
    # A changed bind-mounted file misses from its RUN on; the step before it hits.
    (context / "data" / "config.ini").write_text("bound again\n")
    again = hostctl(state, *args).stdout.splitlines()
    steps = [line for line in again if "STEP" in line or "Using cache" in line]
    bind_at = next(i for i, line in enumerate(steps) if "type=bind" in line)
    assert "Using cache" in steps[bind_at - 1]
    assert "Using cache" not in steps[bind_at + 1]
    assert _file_contents(state, "localhost/mounts:1")["from-bind"] == b"bound again\n"


def _plain(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _file_contents(state: Path, reference: str) -> dict[str, bytes]:
    """The regular files of the image's layers, the last layer's version of each."""
    storage = state / "storage"
    index = json.loads((storage / "images.json").read_text())["images"][reference]
    manifest = json.loads((storage / "blobs" / "sha256" / index["manifest"][7:]).read_text())
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        with tarfile.open(storage / "blobs" / "sha256" / layer["digest"][7:], "r:gz") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isreg() else None
                if handle is not None:
                    files[member.name] = handle.read()
    return files


def test_onbuild_triggers_and_unused_build_args(busybox_ref: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "Containerfile").write_text(
        f"FROM {busybox_ref}\nONBUILD RUN echo triggered > /trigger\n")
    hostctl(state, "build", "-t", "parent:1", str(parent))
    child = tmp_path / "child"
    child.mkdir()
    (child / "Containerfile").write_text("FROM localhost/parent:1\nRUN test -f /trigger\n")
    done = hostctl(state, "build", "--build-arg", "UNUSED=1", "-t", "child:1", str(child))
    assert "warning: build argument UNUSED was not consumed" in done.stdout + done.stderr
    image = store_image(state / "storage", "localhost/child:1")
    assert "trigger" in image.tree and "OnBuild" not in image.config["config"]


def test_rootless_build_keeps_the_image_uids(test_host: Any, busybox_ref: str) -> None:
    user = "builder"
    uid = test_host.lingering_user(user)
    context = f"/home/{user}/ctx"
    script = (f"mkdir -p {context} && printf 'data\\n' > {context}/data.txt && cat > "
              f"{context}/Containerfile")
    test_host.run(["runuser", "-u", user, "--", "sh", "-c", script], input=f"""\
FROM {busybox_ref}
RUN touch /owned && chown 1234:4321 /owned && rm /etc/group && whoami > /whoami
COPY --chown=55:66 data.txt /data.txt
USER app
RUN touch /tmp/by-app
""")
    done = test_host.run(["runuser", "-u", user, "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}",
                          HOSTCTL, "build", "--user", "-t", "rootless:1", context],
                         check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    storage = test_host.home_dir / user / ".local" / "share" / "hostctl" / "storage"
    image = store_image(storage, "localhost/rootless:1")
    assert image.tree["owned"][2:4] == (1234, 4321)
    assert image.tree["data.txt"][2:4] == (55, 66)
    assert image.tree["tmp/by-app"][2:4] == (1000, 1000)
    assert "etc/group" not in image.tree


FETCH = """\
FROM {base} AS first
RUN echo from-first-stage > /made
FROM {base}
ADD --checksum=sha256:{checksum} http://127.0.0.1:{port}/tool.tar.gz /fetched/
ADD http://127.0.0.1:{port}/notes.txt /notes.txt
COPY --exclude=*.log --exclude=skip/ files/ /files/
COPY --from={base} /etc/passwd /base-passwd
RUN --mount=type=bind,from=first,source=/made,target=/mnt/made cat /mnt/made > /seen
"""


def test_add_urls_exclude_and_sources_from_images_and_stages(
        busybox_ref: str, tmp_path: Path) -> None:
    import functools
    import hashlib
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    archive = served / "tool.tar.gz"
    archive.write_bytes(gzip.compress(b"not unpacked: it came from a URL"))
    (served / "notes.txt").write_text("remote notes\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        context = tmp_path / "context"
        (context / "files" / "skip").mkdir(parents=True)
        (context / "files" / "kept.txt").write_text("kept\n")
        (context / "files" / "noise.log").write_text("log\n")
        (context / "files" / "skip" / "x").write_text("x\n")
        checksum = hashlib.sha256(archive.read_bytes()).hexdigest()
        text = FETCH.format(base=busybox_ref, checksum=checksum, port=server.server_port)
        (context / "Containerfile").write_text(text)
        state = tmp_path / "state"
        hostctl(state, "build", "-t", "fetch:1", str(context))
        tree = store_image(state / "storage", "localhost/fetch:1").tree
        assert tree["fetched/tool.tar.gz"][1] == 0o600  # a URL is never unpacked
        assert tree["notes.txt"][0] == "file"
        assert "files/kept.txt" in tree and "files/noise.log" not in tree
        assert "files/skip" not in tree and "files/skip/x" not in tree
        assert tree["base-passwd"][0] == "file"
        flat = _file_contents(state, "localhost/fetch:1")
        assert flat["seen"] == b"from-first-stage\n" and "mnt/made" not in tree
        # A wrong checksum is an error naming the line; nothing is tagged.
        (context / "Containerfile").write_text(text.replace(checksum, "0" * 64))
        done = hostctl(state, "build", "-t", "wrong:1", str(context), check=False)
        assert done.returncode != 0
        assert "Containerfile:4: ADD: " in done.stderr and "does not match" in done.stderr
        assert "wrong" not in (state / "storage" / "images.json").read_text()
    finally:
        server.shutdown()
        server.server_close()


def test_a_declared_unit_builds_its_missing_image(test_host: Any, busybox_ref: str) -> None:
    from tests.integration.test_e2e import declare, prop, wait_journal

    test_host.run([HOSTCTL, "install"])
    test_host.write_file("/srv/declctx/Containerfile", f"""\
FROM {busybox_ref}
ARG WORD
RUN echo "$WORD" > /word
CMD ["sh", "-c", "cat /word; echo decl-done; exec sleep 600"]
""")
    declare(test_host, "declbuilt", """\
image: localhost/declbuilt:1
build:
  context: /srv/declctx
  args: {WORD: from-the-declaration}
stop_timeout: 1
""")
    started = test_host.run(["systemctl", "start", "declbuilt"], check=False)
    assert started.returncode == 0, test_host.journal("declbuilt.service")
    # a line of its own: the build's log shows the CMD instruction, which holds the words
    journal = wait_journal(test_host, "declbuilt.service", "\ndecl-done\n")
    assert "from-the-declaration" in journal and "building localhost/declbuilt:1" in journal
    test_host.run(["systemctl", "stop", "declbuilt"])
    # A second start finds the image stored: no build.
    test_host.run(["systemctl", "start", "declbuilt"])
    deadline = time.monotonic() + 30
    while (journal := test_host.journal("declbuilt.service")).count("\ndecl-done\n") < 2:
        assert time.monotonic() < deadline, journal
        time.sleep(0.2)
    assert journal.count("building localhost/") == 1
    test_host.run(["systemctl", "stop", "declbuilt"])
    # A Containerfile that does not build fails the start with the build's error.
    test_host.write_file("/srv/badctx/Containerfile", f"FROM {busybox_ref}\nFROBNICATE\n")
    declare(test_host, "badbuild", "image: localhost/badbuild:1\n"
            "build: {context: /srv/badctx}\n")
    test_host.run(["systemctl", "start", "badbuild"], check=False)
    assert prop(test_host, "badbuild.service", "ActiveState") == "failed"
    wait_journal(test_host, "badbuild.service",
                 "/srv/badctx/Containerfile:2: unknown instruction 'FROBNICATE'")
    test_host.run(["systemctl", "reset-failed", "badbuild"], check=False)


def test_copy_link_is_reused_when_earlier_steps_change(busybox_ref: str,
                                                      tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "payload.txt").write_text("linked payload\n")
    (context / "Containerfile").write_text(f"""\
FROM {busybox_ref}
ARG V
RUN echo "$V" > /version
COPY --link --chown=app payload.txt /opt/linked/
RUN cat /opt/linked/payload.txt /version > /both
""")
    state = tmp_path / "state"
    hostctl(state, "build", "--build-arg", "V=1", "-t", "link:1", str(context))
    second = hostctl(state, "build", "--build-arg", "V=2", "-t", "link:2", str(context),
                     "--explain-cache").stdout
    steps = [line for line in second.splitlines() if "STEP" in line or "Using cache" in line]
    link_at = next(i for i, line in enumerate(steps) if "COPY --link" in line)
    assert "Using cache" in steps[link_at + 1]  # the RUN before it changed; not this
    assert "Using cache" not in steps[link_at + 2]
    flat = _file_contents(state, "localhost/link:2")
    assert flat["both"] == b"linked payload\n2\n"
    tree = store_image(state / "storage", "localhost/link:2").tree
    assert tree["opt/linked/payload.txt"][2:4] == (1000, 1000)
    assert "store verified" in hostctl(state, "image", "verify").stdout
    # Removing the images prunes their layers, and the cache entries that named them.
    hostctl(state, "image", "rm", "localhost/link:1", "localhost/link:2")
    entries = [json.loads(p.read_text()) for p in (state / "storage" / "build-cache")
               .glob("*.json")]
    assert all(e["layer"] is None for e in entries)
    assert "Using cache" not in hostctl(state, "build", "--build-arg", "V=2", "-t", "link:2",
                                        str(context)).stdout


def test_mount_points_runc_makes_are_removed_and_nothing_else(busybox_ref: str,
                                                              tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text(
        f"FROM scratch\nCOPY --from={busybox_ref} /bin /bin\nRUN touch /etc/empty-flag\n"
        "RUN --mount=type=tmpfs,target=/scratch/deep true\n")
    state = tmp_path / "state"
    hostctl(state, "build", "-t", "points:1", str(context))
    tree = store_image(state / "storage", "localhost/points:1").tree
    # /proc, /dev, /sys, /etc/hosts... and /scratch/deep were runc's; the flag is not.
    assert sorted(p for p in tree if not p.startswith("bin")) == ["etc", "etc/empty-flag"]
