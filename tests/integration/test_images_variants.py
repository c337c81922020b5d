"""Pulls against real docker-registry variants: basic auth, token auth, TLS, faults."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostctl.errors import ImageError
from hostctl.images.manage import prune, remove, verify
from hostctl.images.pull import pull
from hostctl.images.store import Store
from tests.support.faultproxy import FaultProxy
from tests.support.imagebuild import (
    File,
    ImageSpec,
    Layer,
    busybox_image,
    push,
    push_index,
    write_oci_layout,
)
from tests.support.registry import Registry
from tests.support.registryvariants import (
    htpasswd_auth,
    htpasswd_line,
    make_ca,
    registry,
    token_auth,
)
from tests.support.tokenserver import TokenServer

pytestmark = pytest.mark.integration
HOSTCTL = str(Path(sys.executable).parent / "hostctl")
PASSWORD = "s3cret-Pa55"


def small_image(tag: str = "x") -> ImageSpec:
    return ImageSpec((Layer((File("etc/hello", f"hello {tag}\n"),)),), {"Cmd": ["sh"]})


def big_image(seed: int, layers: int = 3, size: int = 3_000_000) -> ImageSpec:
    rng = random.Random(seed)
    return ImageSpec(tuple(Layer((File(f"data/{n}", rng.randbytes(size)),))
                           for n in range(layers)), {})


def leftovers(store: Store) -> list[str]:
    return [str(p) for p in store.root.rglob(".tmp-*")]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "storage")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Auth and config files of our own: the machine's are never read or written."""
    auth = tmp_path / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HOSTCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(tmp_path / "registries.conf"))
    return dict(os.environ)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registry storage holding demo/app:1 (busybox), pushed through a plain instance."""
    storage = tmp_path_factory.mktemp("seeded") / "storage"
    with registry(storage=storage) as (plain, _):
        push(plain, "demo/app", "1", busybox_image())
    return storage


def cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOSTCTL, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_htpasswd_login_stores_0600_and_keeps_password_out_of_output(
    seeded: Path, store: Store, env: dict[str, str], tmp_path: Path
) -> None:
    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line("alice", PASSWORD))
    with registry(htpasswd_auth(users), storage=seeded) as (host, _):
        with pytest.raises(ImageError, match="access denied"):
            pull(store, f"{host}/demo/app:1")
        bad = cli(["login", host, "-u", "alice", "--password-stdin"], env, "wrong\n")
        assert bad.returncode != 0 and "refused the credentials" in bad.stderr
        assert not Path(env["REGISTRY_AUTH_FILE"]).exists()
        good = cli(["login", host, "-u", "alice", "--password-stdin"], env, PASSWORD + "\n")
        assert good.returncode == 0, good.stderr
        assert PASSWORD not in good.stdout + good.stderr
        auth = Path(env["REGISTRY_AUTH_FILE"])
        assert auth.stat().st_mode & 0o777 == 0o600
        assert host in json.loads(auth.read_text())["auths"]
        image = pull(store, f"{host}/demo/app:1")
        assert (image.snapshots[0] / "bin/busybox").is_file()
        out = cli(["logout", host], env)
        assert out.returncode == 0 and host not in json.loads(auth.read_text())["auths"]


def test_token_auth_with_signed_jwts(seeded: Path, store: Store, env: dict[str, str],
                                     tmp_path: Path) -> None:
    with TokenServer(tmp_path, {"bob": PASSWORD}) as tokens, registry(
        token_auth(tokens.realm, tokens.cert_path), storage=seeded
    ) as (host, _):
        with pytest.raises(ImageError, match=r"access denied|insufficient|credentials"):
            pull(store, f"{host}/demo/app:1")
        assert store.lookup(f"{host}/demo/app:1") is None
        login = cli(["login", host, "-u", "bob", "--password-stdin"], env, PASSWORD + "\n")
        assert login.returncode == 0, login.stderr
        before = tokens.requests
        image = pull(store, f"{host}/demo/app:1")
        assert (image.snapshots[0] / "etc/passwd").is_file()
        assert tokens.requests - before <= 2  # one token per scope, cached across blobs


def test_tls_with_a_per_registry_ca(seeded: Path, store: Store, env: dict[str, str],
                                    tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    with registry(tls=ca, storage=seeded) as (host, _):
        certs = Path(env["HOSTCTL_CONFIG_DIR"]) / "certs.d" / host
        certs.mkdir(parents=True)
        (certs / "ca.crt").write_bytes(ca.ca.read_bytes())
        image = pull(store, f"{host}/demo/app:1")
        assert (image.snapshots[0] / "bin/busybox").is_file()
        (certs / "ca.crt").unlink()
        (certs / "other.crt").write_bytes(make_ca(tmp_path / "other").ca.read_bytes())
        with pytest.raises(ImageError, match=r"unreachable|TLS|certificate"):
            pull(Store(tmp_path / "store2"), f"{host}/demo/app:1")


@pytest.fixture(scope="module")
def upstream() -> Iterator[Registry]:
    with Registry() as reg:
        yield reg


def test_fault_proxy_retries_resumes_and_refuses_wrong_bytes(
    upstream: Registry, store: Store, env: dict[str, str]
) -> None:
    push(upstream.host, "demo/faulty", "1", big_image(1, layers=2, size=400_000))
    with FaultProxy(upstream.host) as proxy:
        ref = f"{proxy.host}/demo/faulty:1"
        proxy.fault("/manifests/", "503", times=2)
        proxy.fault("/blobs/", "429", times=1)
        proxy.fault("/blobs/", "cut", times=2)
        started = time.monotonic()
        image = pull(store, ref)
        assert time.monotonic() - started >= 1.0  # Retry-After: 1 was honoured
        assert [k for _, k in proxy.seen if k] .count("cut") == 2
        assert all((s / "data").is_dir() for s in image.snapshots)
        assert verify(store).problems == []
        other = Store(store.root.parent / "wrong")
        proxy.fault("/blobs/sha256:", "wrong", times=10)
        with pytest.raises(ImageError, match="digest mismatch"):
            pull(other, ref)
        assert leftovers(other) == []
        assert not any(other.blobs.glob("*")) or all(
            p.name not in {layer[7:] for layer in image.layers} for p in other.blobs.iterdir())


def test_eight_concurrent_pulls_fetch_each_blob_once(
    upstream: Registry, store: Store, env: dict[str, str]
) -> None:
    push(upstream.host, "demo/crowd", "1", big_image(2, layers=3, size=500_000))
    code = ("import sys; from hostctl.images.pull import pull; "
            "from hostctl.images.store import Store; "
            "print(pull(Store(sys.argv[1]), sys.argv[2]).manifest_digest)")
    with FaultProxy(upstream.host) as proxy:
        ref = f"{proxy.host}/demo/crowd:1"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(store.root), ref],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert len({o for o, _ in outs}) == 1
        blob_gets = [path for path, _ in proxy.seen if "/blobs/" in path]
        assert len(blob_gets) == len(set(blob_gets)) == 4  # config + 3 layers, once each


def test_kill_9_during_pull_then_pull_and_verify(
    upstream: Registry, store: Store, env: dict[str, str]
) -> None:
    push(upstream.host, "demo/killed", "1", big_image(3, layers=4, size=2_000_000))
    code = ("import sys; from hostctl.images.pull import pull; "
            "from hostctl.images.store import Store; pull(Store(sys.argv[1]), sys.argv[2])")
    ref = f"{upstream.host}/demo/killed:1"
    rng = random.Random(7)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", code, str(store.root), ref],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.15, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    image = pull(store, ref)
    assert all((s / "data").is_dir() for s in image.snapshots)
    assert verify(store).problems == []
    assert leftovers(store) == []


def test_disk_full_is_clear_and_leaves_nothing_partial(
    upstream: Registry, tmp_path: Path, env: dict[str, str]
) -> None:
    push(upstream.host, "demo/huge", "1", big_image(4, layers=1, size=6_000_000))
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        store = Store(mount / "storage")
        with pytest.raises(ImageError) as err:
            pull(store, f"{upstream.host}/demo/huge:1")
        assert "No space left on device" in str(err.value)
        assert "free some space" in str(err.value)
        assert leftovers(store) == []
        assert store.lookup(f"{upstream.host}/demo/huge:1") is None
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_oci_layout_and_archive_sources(store: Store, tmp_path: Path, env: dict[str, str]) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(layout, "v1", small_image("one"))
    write_oci_layout(layout, "v2", small_image("two"))
    image = pull(store, f"oci:{layout}:v2")
    assert (image.snapshots[0] / "etc/hello").read_text() == "hello two\n"
    with pytest.raises(ImageError, match="several images"):
        pull(store, f"oci:{layout}")
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(layout, arcname=".")
    image = pull(store, f"oci-archive:{archive}:v1")
    assert (image.snapshots[0] / "etc/hello").read_text() == "hello one\n"
    assert store.lookup(f"oci-archive:{archive}:v1") is not None


def test_mirror_first_then_location_and_blocked(
    upstream: Registry, store: Store, env: dict[str, str]
) -> None:
    push(upstream.host, "team/app", "1", small_image("mirrored"))
    conf = Path(env["CONTAINERS_REGISTRIES_CONF"])
    conf.write_text(
        '[[registry]]\nprefix = "registry.example.invalid/team"\n'
        f'location = "{upstream.host}/team"\n'
        '[[registry.mirror]]\nlocation = "127.0.0.1:9/team"\n'
        '[[registry]]\nprefix = "blocked.example.invalid"\nblocked = true\n'
        '[aliases]\n"app" = "registry.example.invalid/team/app"\n')
    logs: list[str] = []
    image = pull(store, "app:1", log=logs.append)
    assert image.reference == "registry.example.invalid/team/app:1"
    assert any("mirror 127.0.0.1:9 failed" in line for line in logs)
    with pytest.raises(ImageError, match="blocked"):
        pull(store, "blocked.example.invalid/x:1")


def test_prune_and_rmi_keep_what_a_running_container_uses(
    upstream: Registry, store: Store, tmp_path: Path, env: dict[str, str]
) -> None:
    push(upstream.host, "demo/used", "1", small_image("used"))
    push(upstream.host, "demo/idle", "1", small_image("idle"))
    used = pull(store, f"{upstream.host}/demo/used:1")
    idle = pull(store, f"{upstream.host}/demo/idle:1")
    containers = tmp_path / "run/containers"
    bundle = containers / "web"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({
        "root": {"path": "rootfs"},
        "annotations": {"io.hostctl.image.digest": used.manifest_digest}}))
    lower = ":".join(str(s) for s in reversed(used.snapshots))
    (bundle / "upper").mkdir()
    (bundle / "work").mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={bundle}/upper,workdir={bundle}/work",
                    str(rootfs)], check=True)
    try:
        report = remove(store, [f"{upstream.host}/demo/used:1",
                                f"{upstream.host}/demo/idle:1"], containers)
        assert set(report.removed) == {f"{upstream.host}/demo/used:1",
                                       f"{upstream.host}/demo/idle:1"}
        assert all(s.is_dir() for s in used.snapshots)
        assert not any(s.is_dir() for s in idle.snapshots)
        assert (rootfs / "etc/hello").read_text() == "hello used\n"
    finally:
        subprocess.run(["umount", str(rootfs)], check=True)
    (bundle / "config.json").unlink()
    prune(store, containers)
    assert not any(s.is_dir() for s in used.snapshots)


def test_verify_finds_and_repairs_a_damaged_blob(
    upstream: Registry, store: Store, env: dict[str, str]
) -> None:
    push(upstream.host, "demo/damaged", "1", small_image("damaged"))
    ref = f"{upstream.host}/demo/damaged:1"
    image = pull(store, ref)
    config = store.blob_path(image.config_digest)
    config.write_bytes(config.read_bytes()[:-1] + b" ")
    report = verify(store)
    assert any(image.config_digest[7:] in p and "corrupt" in p for p in report.problems)
    repaired = verify(store, repair=True, pull=lambda r: pull(store, r, policy="always"))
    assert repaired.repaired == [ref]
    assert verify(store).problems == []


def test_remote_digest_asks_the_registry_and_stores_nothing(
    upstream: Registry, env: dict[str, str]
) -> None:
    from hostctl.api.images import list_images, remote_digest
    from hostctl.paths import Scope

    first = push(upstream.host, "digest/app", "1", small_image("one"))
    assert remote_digest(f"{upstream.host}/digest/app:1", scope=Scope.SYSTEM) == first
    moved = push(upstream.host, "digest/app", "1", small_image("two"))
    assert moved != first
    assert remote_digest(f"{upstream.host}/digest/app:1", scope=Scope.SYSTEM) == moved
    amd, arm = (ImageSpec((Layer((File("etc/arch", f"{arch}\n"),)),), {}, architecture=arch)
                for arch in ("amd64", "arm64"))
    index = push_index(upstream.host, "digest/multi", "1", [amd, arm])
    ref = f"{upstream.host}/digest/multi:1"
    assert remote_digest(ref, scope=Scope.SYSTEM) == index
    assert remote_digest(ref, scope=Scope.SYSTEM, platform="linux/arm64") == arm.build().digest
    with pytest.raises(ImageError, match="not found"):
        remote_digest(f"{upstream.host}/digest/app:nope", scope=Scope.SYSTEM)
    assert list_images(scope=Scope.SYSTEM) == []  # nothing was pulled


def test_an_insecure_entry_pulls_from_a_plain_http_loopback_registry(
    upstream: Registry, store: Store, env: dict[str, str]
) -> None:
    # `insecure = true` is "TLS without verification, or HTTP" (as podman reads it): it
    # must not turn a loopback registry's plain HTTP into HTTPS only.
    push(upstream.host, "demo/plain", "1", small_image("plain"))
    Path(env["CONTAINERS_REGISTRIES_CONF"]).write_text(
        f'[[registry]]\nlocation = "{upstream.host}"\ninsecure = true\n')
    image = pull(store, f"{upstream.host}/demo/plain:1")
    assert (image.snapshots[-1] / "etc/hello").read_text() == "hello plain\n"


def test_an_insecure_entry_lets_a_named_registry_fall_back_to_plain_http(
    upstream: Registry, store: Store, env: dict[str, str]
) -> None:
    # A name that is not loopback by its spelling: this machine's host name, when it
    # resolves to a loopback address (where the registry listens).
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, upstream.port)}
    except OSError:
        addresses = set()
    if "127.0.0.1" not in addresses:
        pytest.skip(f"this machine's host name {name!r} does not resolve to 127.0.0.1")
    push(upstream.host, "demo/named", "1", small_image("named"))
    ref = f"{name}:{upstream.port}/demo/named:1"
    conf = Path(env["CONTAINERS_REGISTRIES_CONF"])
    conf.write_text("")
    with pytest.raises(ImageError):  # HTTPS only: the registry speaks plain HTTP
        pull(store, ref)
    conf.write_text(f'[[registry]]\nlocation = "{name}:{upstream.port}"\ninsecure = true\n')
    image = pull(store, ref)
    assert (image.snapshots[-1] / "etc/hello").read_text() == "hello named\n"
