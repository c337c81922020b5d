"""Push, copy and remote inspection against Debian's docker-registry.

Images are built with tests/support/imagebuild.py; skopeo 1.9.3 is the independent
reader: what hostctl pushes, skopeo must read with the same digests, and the reverse.
Uploads are counted through tests/support/pushproxy.py, which can also cut a chunk of a
push mid-body.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.copy import CopyOptions, copy_image
from hostctl.images.pull import pull
from hostctl.images.registry import RegistryClient
from hostctl.images.store import Store
from tests.support import imagebuild as ib
from tests.support.pushproxy import PushProxy
from tests.support.registry import Registry

pytestmark = pytest.mark.integration
HOSTCTL = str(Path(sys.executable).parent / "hostctl")


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with Registry() as reg:
        yield reg


@pytest.fixture(scope="module")
def image() -> ib.BuiltImage:
    """busybox plus a 1.5 MB uncompressed layer (several chunks at a small chunk size)."""
    payload = bytes((n * 7919) % 251 for n in range(1_500_000))
    extra = ib.Layer((ib.File("data/blob", payload),), ib.Compression.NONE)
    return ib.busybox_image(extra_layers=[extra], Cmd=["sh", "-c", "echo pushed"]).build()


def _env(tmp: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
            "HOSTCTL_STATE_DIR": str(tmp / "state"), "HOSTCTL_CONFIG_DIR": str(tmp / "conf"),
            "HOSTCTL_RUN_DIR": str(tmp / "run")}


def hostctl(tmp: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([HOSTCTL, *args], capture_output=True, text=True, env=_env(tmp),
                          timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _layout(tmp: Path, built: ib.BuiltImage, tag: str = "v1") -> str:
    ib.write_oci_layout(tmp / "layout", tag, built)
    return f"oci:{tmp / 'layout'}:{tag}"


def test_push_from_the_store_reads_back_with_skopeo_and_hostctl(
        tmp_path: Path, registry: Registry, image: ib.BuiltImage) -> None:
    hostctl(tmp_path, "pull", _layout(tmp_path, image))
    dest = f"{registry.host}/ship/pushed:1"
    done = hostctl(tmp_path, "push", "example.com/not/stored:1", dest, ok=False)
    assert done.returncode != 0 and "no such image in the store" in done.stderr
    name = json.loads(hostctl(tmp_path, "images", "--format", "json").stdout)[0]["reference"]
    assert name.startswith("oci:")
    result = json.loads(hostctl(tmp_path, "push", name, dest, "--format", "json").stdout)
    assert result["digest"] == image.digest
    assert {b["action"] for b in result["blobs"]} == {"uploaded"}
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{dest}").encode()
    assert raw == image.manifest
    skopeo("copy", "--src-tls-verify=false", f"docker://{dest}", f"oci:{tmp_path / 'sk'}:x")
    store = Store(tmp_path / "other")
    assert pull(store, dest).manifest_digest == image.digest
    again = json.loads(hostctl(tmp_path, "push", name, dest, "--format", "json").stdout)
    assert {b["action"] for b in again["blobs"]} == {"exists"}
    # stored under a registry name too, the image's blobs mount into another repository
    hostctl(tmp_path, "pull", dest)
    moved = json.loads(hostctl(tmp_path, "push", dest, f"{registry.host}/ship/moved:1",
                               "--format", "json").stdout)
    assert moved["digest"] == image.digest
    assert {b["action"] for b in moved["blobs"]} == {"mounted"}


def test_copy_to_another_repository_mounts_every_blob(
        tmp_path: Path, registry: Registry, image: ib.BuiltImage) -> None:
    client = RegistryClient()
    with PushProxy(registry.host) as proxy:
        src, dst = f"docker://{proxy.host}/ship/a:1", f"docker://{proxy.host}/ship/b:1"
        copy_image(_layout(tmp_path, image), src, store=Store(tmp_path / "s"), client=client)
        proxy.requests.clear()
        result = copy_image(src, dst, store=Store(tmp_path / "s"), client=client)
    assert result.digest == image.digest
    mounts = [r for r in proxy.requests if r[0] == "POST" and "mount=" in r[1]]
    assert len(mounts) == 3 and all(r[2] == 201 for r in mounts)
    assert not [r for r in proxy.requests if r[0] in ("PATCH", "PUT") and "/blobs/" in r[1]]
    assert not [r for r in proxy.requests if r[0] == "GET" and "/blobs/sha256:" in r[1]]
    assert skopeo("inspect", "--raw", "--tls-verify=false",
                  f"docker://{registry.host}/ship/b:1").encode() == image.manifest


def test_a_push_cut_mid_chunk_resumes_where_the_registry_stopped(
        tmp_path: Path, registry: Registry) -> None:
    one_layer = ib.ImageSpec((ib.Layer((ib.File("data", bytes(range(256)) * 4096),),
                                       ib.Compression.NONE),), {"Cmd": ["true"]}).build()
    chunk = 256 * 1024  # the 1 MiB layer goes in 5 PATCHes; the third is cut mid-body
    with PushProxy(registry.host) as proxy:
        proxy.fault("PATCH", "/blobs/uploads/", "", times=2)
        proxy.fault("PATCH", "/blobs/uploads/", "cut", times=1)
        proxy.fault("PUT", "/manifests/", "429", times=1)
        dest = f"docker://{proxy.host}/ship/resumed:1"
        result = copy_image(_layout(tmp_path, one_layer), dest, store=Store(tmp_path / "s"),
                            client=RegistryClient(backoff=0.01, max_wait=1.5),
                            options=CopyOptions(chunk=chunk))
    assert result.digest == one_layer.digest
    patches = [r for r in proxy.requests if r[0] == "PATCH"]
    cut = next(n for n, r in enumerate(patches) if r[2] == 0)
    cut_range = patches[cut][4]
    assert cut_range == f"{2 * chunk}-{3 * chunk - 1}"
    status = [r for r in proxy.requests if r[0] == "GET" and "/blobs/uploads/" in r[1]]
    assert status and status[0][2] == 204  # the upload's state was asked
    assert patches[cut + 1][4] == cut_range  # and the same chunk sent again, not byte 0
    manifest_puts = [r for r in proxy.requests if r[0] == "PUT" and "/manifests/" in r[1]]
    assert [r[2] for r in manifest_puts] == [429, 201]  # Retry-After honoured, then stored
    assert skopeo("inspect", "--raw", "--tls-verify=false",
                  f"docker://{registry.host}/ship/resumed:1").encode() == one_layer.manifest


def test_oci_to_docker_archive_to_registry_keeps_the_image(
        tmp_path: Path, registry: Registry, image: ib.BuiltImage) -> None:
    archive = tmp_path / "images.tar"
    other = ib.busybox_image(Cmd=["true"]).build()
    hostctl(tmp_path, "image", "copy", _layout(tmp_path, image),
            f"docker-archive:{archive}:example.com/ship/first:1")
    hostctl(tmp_path, "image", "copy", _layout(tmp_path, other, "o"),
            f"docker-archive:{archive}:example.com/ship/second:2")
    entries = json.loads(skopeo_member(archive, "manifest.json"))
    assert [e["RepoTags"] for e in entries] == [["example.com/ship/first:1"],
                                                ["example.com/ship/second:2"]]
    dest = f"{registry.host}/ship/round:1"
    done = hostctl(tmp_path, "image", "copy", "--format", "json",
                   f"docker-archive:{archive}:example.com/ship/first:1", f"docker://{dest}")
    assert json.loads(done.stdout)["digest"] == image.digest
    second = hostctl(tmp_path, "image", "copy", f"docker-archive:{archive}:@1",
                     f"docker://{registry.host}/ship/round:2")
    assert second.stdout.strip() == other.digest
    # skopeo (containers/image, as podman load) reads hostctl's archive
    skopeo("copy", f"docker-archive:{archive}:example.com/ship/first:1",
           f"oci:{tmp_path / 'from-archive'}:x")
    config = skopeo("inspect", "--config", f"oci:{tmp_path / 'from-archive'}:x")
    assert json.loads(config)["config"]["Cmd"] == ["sh", "-c", "echo pushed"]
    with tempfile.TemporaryDirectory(prefix="pl-", dir="/tmp") as runroot:  # podman: <50 chars
        podman = ["podman", "--root", str(tmp_path / "podman"), "--runroot", runroot,
                  "--storage-driver", "vfs"]
        loaded = subprocess.run([*podman, "load", "-i", str(archive)], capture_output=True,
                                text=True, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        assert "example.com/ship/second:2" in loaded.stdout
        ids = subprocess.run([*podman, "inspect", "--format", "{{.Id}}",
                              "example.com/ship/first:1"], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert "sha256:" + ids == json.loads(image.manifest)["config"]["digest"]
    pulled = hostctl(tmp_path, "pull", f"docker-archive:{archive}:example.com/ship/first:1")
    assert pulled.stdout.strip() == image.digest
    hostctl(tmp_path, "image", "copy", f"docker-archive:{archive}:@1", f"dir:{tmp_path / 'd'}")
    assert hostctl(tmp_path, "pull", f"dir:{tmp_path / 'd'}").stdout.strip() == other.digest
    names = [i["reference"] for i in json.loads(hostctl(tmp_path, "images", "--format",
                                                        "json").stdout)]
    assert f"docker-archive:{archive}:example.com/ship/first:1" in names
    ambiguous = hostctl(tmp_path, "image", "copy", f"docker-archive:{archive}",
                        f"oci:{tmp_path / 'x'}", ok=False)
    assert ambiguous.returncode != 0 and "holds 2 images" in ambiguous.stderr


def skopeo_member(archive: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(archive) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_all_copies_the_index_and_by_default_one_platform(
        tmp_path: Path, registry: Registry) -> None:
    amd = ib.busybox_image(Cmd=["amd"])
    arm = ib.ImageSpec(amd.layers, {"Cmd": ["arm"]}, architecture="arm64")
    index_digest = ib.push_index(registry.host, "ship/multi", "1", [amd, arm])
    done = hostctl(tmp_path, "image", "copy", "--all", "--format", "json",
                   f"docker://{registry.host}/ship/multi:1",
                   f"docker://{registry.host}/ship/multi-copy:1")
    result = json.loads(done.stdout)
    assert result["digest"] == index_digest and len(result["manifests"]) == 3
    one = hostctl(tmp_path, "image", "copy", f"docker://{registry.host}/ship/multi:1",
                  f"oci:{tmp_path / 'one'}:x")
    index = json.loads((tmp_path / "one" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == one.stdout.strip() != index_digest
    amd_digest, arm_digest = amd.build().digest, arm.build().digest
    assert one.stdout.strip() == amd_digest  # this host's platform (the tests run on amd64)
    ref = f"docker://{registry.host}/ship/multi-copy:1"
    info = json.loads(hostctl(tmp_path, "image", "inspect", "--format", "json", ref).stdout)
    assert info["Digest"] == index_digest and info["ManifestDigest"] == amd_digest
    assert info["Platforms"] == ["linux/amd64", "linux/arm64"]
    arm_raw = subprocess.run([HOSTCTL, "image", "inspect", "--raw", "--platform", "linux/arm64",
                              ref], capture_output=True, env=_env(tmp_path), check=True).stdout
    assert arm_raw == arm.build().manifest and ib.sha256_digest(arm_raw) == arm_digest


def test_remote_inspect_agrees_with_skopeo_and_tags_and_rm(
        tmp_path: Path, registry: Registry, image: ib.BuiltImage) -> None:
    ref = f"{registry.host}/ship/inspected"
    copy_image(_layout(tmp_path, image), f"docker://{ref}:1", store=Store(tmp_path / "s"),
               client=RegistryClient())
    copy_image(f"docker://{ref}:1", f"docker://{ref}:2", store=Store(tmp_path / "s"),
               client=RegistryClient())
    ours = json.loads(hostctl(tmp_path, "image", "inspect", "--format", "json",
                              f"docker://{ref}:1").stdout)
    theirs = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}:1"))
    for key in ("Digest", "Layers", "Architecture", "Os", "Env", "Created", "Labels"):
        assert ours[key] == theirs[key], key
    assert sorted(ours["RepoTags"]) == sorted(theirs["RepoTags"]) == ["1", "2"]
    raw = subprocess.run([HOSTCTL, "image", "inspect", "--raw", f"docker://{ref}:1"],
                         capture_output=True, env=_env(tmp_path), check=True).stdout
    assert raw == image.manifest
    config = hostctl(tmp_path, "image", "inspect", "--config", f"docker://{ref}:1").stdout
    assert json.loads(config) == json.loads(skopeo("inspect", "--config", "--raw",
                                                   "--tls-verify=false", f"docker://{ref}:1"))
    tags = hostctl(tmp_path, "image", "tags", f"docker://{ref}").stdout.split()
    assert sorted(tags) == ["1", "2"]
    assert sorted(json.loads(skopeo("list-tags", "--tls-verify=false",
                                    f"docker://{ref}"))["Tags"]) == sorted(tags)
    refused = hostctl(tmp_path, "image", "rm", f"docker://{ref}:2", ok=False)
    assert refused.returncode != 0
    assert "does not delete single tags" in refused.stderr and image.digest in refused.stderr
    hostctl(tmp_path, "image", "rm", f"docker://{ref}@{image.digest}")
    gone = hostctl(tmp_path, "image", "inspect", f"docker://{ref}:1", ok=False)
    assert gone.returncode != 0 and "not found" in gone.stderr


def test_push_to_an_htpasswd_registry_uses_the_stored_login(
        tmp_path: Path, image: ib.BuiltImage) -> None:
    from tests.support.registryvariants import htpasswd_auth, htpasswd_line
    from tests.support.registryvariants import registry as variant

    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line("alice", "secret"))
    with variant(htpasswd_auth(users)) as (host, _storage):
        dest = f"docker://{host}/ship/private:1"
        denied = hostctl(tmp_path, "image", "copy", _layout(tmp_path, image), dest, ok=False)
        assert denied.returncode != 0 and "access denied" in denied.stderr
        auth = tmp_path / "auth.json"
        login = subprocess.run([HOSTCTL, "login", "-u", "alice", "--password-stdin",
                                "--authfile", str(auth), host], input="secret\n", text=True,
                               capture_output=True, env=_env(tmp_path))
        assert login.returncode == 0, login.stderr
        env = {**_env(tmp_path), "REGISTRY_AUTH_FILE": str(auth)}
        done = subprocess.run([HOSTCTL, "image", "copy", _layout(tmp_path, image), dest],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == image.digest


def test_a_damaged_source_pushes_no_manifest(
        tmp_path: Path, registry: Registry, image: ib.BuiltImage) -> None:
    source = _layout(tmp_path, image)
    layer = json.loads(image.manifest)["layers"][0]["digest"].removeprefix("sha256:")
    blob = tmp_path / "layout" / "blobs" / "sha256" / layer
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"do not match|digest"):
        copy_image(source, f"docker://{registry.host}/ship/damaged:1",
                   store=Store(tmp_path / "s"), client=RegistryClient())
    missing = hostctl(tmp_path, "image", "inspect", f"docker://{registry.host}/ship/damaged:1",
                      ok=False)
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_sync_of_a_yaml_list_twice_copies_nothing_the_second_time(
        tmp_path: Path, registry: Registry) -> None:
    host = registry.host
    tags = ["1.0.0", "1.2.0", "v1.2.5", "1.3.1", "2.0.0", "latest"]
    for tag in tags:
        built = ib.busybox_image(Cmd=["echo", tag]).build()
        ib.push(host, "sync/app", tag, built)
    ib.push(host, "sync/tool", "1", ib.busybox_image(Cmd=["tool"]).build())
    ib.push(host, "sync/tool", "2", ib.busybox_image(Cmd=["tool2"]).build())
    spec = tmp_path / "sync.yaml"
    spec.write_text(f"{host}:\n"
                    "  images-by-semver:\n    sync/app: '>=1.2, <2'\n"
                    "  images:\n    sync/tool: ['2']\n"
                    "  rename:\n    sync/app: mirror/app\n")
    dry = hostctl(tmp_path, "image", "sync", "--dry-run", str(spec), f"docker://{host}/copies")
    assert dry.stderr.count("would copy") == 4
    missing = hostctl(tmp_path, "image", "tags", f"docker://{host}/copies/sync/tool", ok=False)
    assert missing.returncode != 0  # nothing was copied
    first = hostctl(tmp_path, "image", "sync", "--format", "json", str(spec),
                    f"docker://{host}/copies")
    copied = json.loads(first.stdout)["copied"]
    assert sorted(c["destination"] for c in copied) == sorted(
        [f"docker://{host}/copies/mirror/app:{t}" for t in ("1.2.0", "v1.2.5", "1.3.1")]
        + [f"docker://{host}/copies/sync/tool:2"])
    second = json.loads(hostctl(tmp_path, "image", "sync", "--format", "json", str(spec),
                                f"docker://{host}/copies").stdout)
    assert second["copied"] == [] and len(second["unchanged"]) == 4
    to_dir = hostctl(tmp_path, "image", "sync", str(spec), f"dir:{tmp_path / 'mirror'}")
    assert to_dir.stdout.strip() == "copied 4, unchanged 0"
    assert (tmp_path / "mirror" / "mirror" / "app:1.3.1" / "manifest.json").is_file()
    again = hostctl(tmp_path, "image", "sync", str(spec), f"dir:{tmp_path / 'mirror'}")
    assert again.stdout.strip() == "copied 0, unchanged 4"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"{host}:\n  images:\n    sync/app: ['1']\n  imagez: {{}}\n")
    wrong = hostctl(tmp_path, "image", "sync", str(bad), f"docker://{host}/x", ok=False)
    assert wrong.returncode != 0 and f"{bad}:4" in wrong.stderr and "imagez" in wrong.stderr


def test_push_with_token_auth_asks_push_and_pull_and_mounts_across_repositories(
        tmp_path: Path, image: ib.BuiltImage) -> None:
    from tests.support.registryvariants import registry as variant
    from tests.support.registryvariants import token_auth
    from tests.support.tokenserver import TokenServer

    auth = tmp_path / "auth.json"
    with TokenServer(tmp_path, {"bob": "pw"}) as tokens, variant(
            token_auth(tokens.realm, tokens.cert_path)) as (host, _storage):
        logins = {"auths": {host: {"auth": base64.b64encode(b"bob:pw").decode()}}}
        auth.write_text(json.dumps(logins))
        client = RegistryClient(auth_files=(auth,))
        store = Store(tmp_path / "s")
        first = copy_image(_layout(tmp_path, image), f"docker://{host}/ship/tok:1",
                           store=store, client=client)
        moved = copy_image(f"docker://{host}/ship/tok:1", f"docker://{host}/ship/tok2:1",
                           store=store, client=RegistryClient(auth_files=(auth,)))
    assert first.digest == moved.digest == image.digest
    assert tokens.scopes.count(["repository:ship/tok:pull,push"]) == 1  # shared by 3 blobs
    assert ["repository:ship/tok2:pull,push", "repository:ship/tok:pull"] in tokens.scopes
    assert {b["action"] for b in moved.blobs} == {"mounted"}


def test_an_upload_the_registry_kept_part_of_starts_again(
        tmp_path: Path, registry: Registry) -> None:
    """docker-registry cancels an upload whose state no longer matches what it holds:
    the blob (a chunked one, and a monolithic one) goes again in a new session."""
    big = ib.Layer((ib.File("big", bytes(range(256)) * 4096),), ib.Compression.NONE)
    small = ib.Layer((ib.File("small", b"s" * 100_000),), ib.Compression.NONE)
    built = ib.ImageSpec((big, small), {"Cmd": ["true"]}).build()
    with PushProxy(registry.host) as proxy:
        proxy.fault("PATCH", "/blobs/uploads/", "", times=1)
        proxy.fault("PATCH", "/blobs/uploads/", "cut-forward", times=1)
        proxy.fault("PUT", "/blobs/uploads/", "cut-forward", times=1)
        dest = f"docker://{proxy.host}/ship/restarted:1"
        result = copy_image(_layout(tmp_path, built), dest, store=Store(tmp_path / "s"),
                            client=RegistryClient(backoff=0.01),
                            options=CopyOptions(chunk=512 * 1024))
    assert result.digest == built.digest
    cuts = [r for r in proxy.requests if r[2] == 0]
    assert {r[0] for r in cuts} == {"PATCH", "PUT"}
    starts = [r for r in proxy.requests if r[0] == "POST" and r[2] == 202]
    assert len(starts) >= 5  # config, two layers, and a new session after each cut
    assert skopeo("inspect", "--raw", "--tls-verify=false",
                  f"docker://{registry.host}/ship/restarted:1").encode() == built.manifest


def test_sync_from_a_tls_registry_with_the_files_credentials_and_cert_dir(
        tmp_path: Path, registry: Registry, image: ib.BuiltImage) -> None:
    from hostctl.images.auth import Credentials
    from tests.support.registryvariants import htpasswd_auth, htpasswd_line, make_ca
    from tests.support.registryvariants import registry as variant

    ca = make_ca(tmp_path / "ca")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.ca.read_bytes())
    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line("carol", "s3cret"))
    with variant(htpasswd_auth(users), tls=ca) as (host, _storage):
        seeding = RegistryClient()
        seeding.use_cert_dir(host, certs)
        seeding.use_credentials(host, Credentials("carol", "s3cret"))
        copy_image(_layout(tmp_path, image), f"docker://{host}/private/app:1",
                   store=Store(tmp_path / "s"), client=seeding)
        spec = tmp_path / "sync.yaml"
        spec.write_text(f"{host}:\n  images:\n    private/app: ['1']\n"
                        f"  credentials: {{username: carol, password: s3cret}}\n"
                        f"  cert-dir: {certs}\n")
        done = hostctl(tmp_path, "image", "sync", "--format", "json", str(spec),
                       f"docker://{registry.host}/mirrored")
        assert [c["digest"] for c in json.loads(done.stdout)["copied"]] == [image.digest]
        spec.write_text(f"{host}:\n  images:\n    private/app: ['1']\n")
        denied = hostctl(tmp_path, "image", "sync", str(spec),
                         f"docker://{registry.host}/mirrored", ok=False)
        assert denied.returncode != 0  # no CA, no credentials: the file's were what worked


def test_a_busy_registry_answering_a_chunk_with_429_is_waited_for(
        tmp_path: Path, registry: Registry) -> None:
    one_layer = ib.ImageSpec((ib.Layer((ib.File("busy", bytes(range(256)) * 2048),),
                                       ib.Compression.NONE),), {"Cmd": ["true"]}).build()
    waits: list[float] = []
    with PushProxy(registry.host) as proxy:
        proxy.fault("PATCH", "/blobs/uploads/", "", times=1)
        proxy.fault("PATCH", "/blobs/uploads/", "429", times=1)
        result = copy_image(_layout(tmp_path, one_layer), f"docker://{proxy.host}/ship/busy:1",
                            store=Store(tmp_path / "s"),
                            client=RegistryClient(sleep=waits.append),
                            options=CopyOptions(chunk=128 * 1024))
    assert result.digest == one_layer.digest
    assert 1.0 in waits  # the proxy's Retry-After: 1
    patches = [r for r in proxy.requests if r[0] == "PATCH"]
    busy = next(n for n, r in enumerate(patches) if r[2] == 429)
    assert patches[busy + 1][4] == patches[busy][4]  # the same chunk again, after asking
