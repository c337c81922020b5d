"""Quadlet templates (NAME@.container and its instances), drop-in directories by
prefix and type, [Quadlet] DefaultDependencies=, ServiceName= and dependencies written
as NAME.container: what the reader loads and what the generator writes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hostctl.declarations.search import dropin_dir_names, load_declaration
from hostctl.errors import DeclarationError
from hostctl.paths import Scope
from hostctl.runtime.runc import runtime_id
from hostctl.units.generator import generate

TEMPLATE = """\
[Unit]
Requires=db.container
[Container]
Image=docker.io/library/busybox:1.36
Exec=sleep %i
Volume=/srv/%p-%i:/data
[Install]
WantedBy=multi-user.target
DefaultInstance=100
"""


@pytest.fixture
def decl(tmp_path: Path) -> Path:
    directory = tmp_path / "decl"
    directory.mkdir()
    (directory / "web@.container").write_text(TEMPLATE)
    (directory / "web@7.container").symlink_to("web@.container")
    (directory / "db.yaml").write_text("image: docker.io/library/busybox\n")
    return directory


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_an_instance_is_read_from_the_template(decl: Path) -> None:
    by_link = load_declaration("web@7", Scope.SYSTEM, [decl])
    assert (by_link.name, by_link.command) == ("web@7", ("sleep", "7"))
    assert by_link.volumes[0].source == "/srv/web-7"
    started = load_declaration("web@55", Scope.SYSTEM, [decl])  # no file: the template's
    assert (started.command, started.source) == (("sleep", "55"), decl / "web@.container")
    assert started.unit == (("Requires", ("db.service",)),)


def test_a_template_alone_is_not_a_container(decl: Path) -> None:
    with pytest.raises(DeclarationError, match="is a template"):
        load_declaration("web@", Scope.SYSTEM, [decl])


def test_drop_ins_from_specific_to_broad(decl: Path) -> None:
    assert dropin_dir_names("my-web@7", ".container") == [
        "my-web@7.container.d", "my-web@.container.d", "my-@.container.d",
        "my-.container.d", "container.d",
    ]
    _write(decl / "container.d/10-env.conf", "[Container]\nEnvironment=A=type B=type\n")
    _write(decl / "web-.container.d/20-env.conf", "[Container]\nEnvironment=C=prefix\n")
    _write(decl / "web@.container.d/10-env.conf", "[Container]\nEnvironment=A=template\n")
    _write(decl / "web@7.container.d/30-env.conf", "[Container]\nEnvironment=D=%i\n")
    seven = load_declaration("web@7", Scope.SYSTEM, [decl])
    # 10-env.conf of the template shadows the type-wide one of the same name
    assert dict(seven.env) == {"A": "template", "D": "7"}
    (decl / "web-app.container").write_text("[Container]\nImage=docker.io/library/busybox\n")
    app = load_declaration("web-app", Scope.SYSTEM, [decl])
    assert dict(app.env) == {"A": "type", "B": "type", "C": "prefix"}


def test_the_generator_writes_template_and_instance_units(
    decl: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    units = generate(Scope.SYSTEM, out, dirs=[decl], report=lambda _: None)
    template = units["web@.service"]
    assert "ExecStart=" in template and " launch web@%i\n" in template
    assert "RequiresMountsFor=/srv/web-%i\n" in template
    assert "Requires=db.service\n" in template
    assert "hostctl-template-instance" not in "".join(units.values())
    assert " launch web@7\n" in units["web@7.service"]
    wants = out / "multi-user.target.wants"
    assert os.readlink(wants / "web@100.service") == "../web@.service"  # DefaultInstance=
    assert os.readlink(wants / "web@7.service") == "../web@7.service"
    assert {"web-healthcheck@.timer", "web-healthcheck@7.timer"} <= set(units)
    assert "BindsTo=web@%i.service" in units["web-healthcheck@.timer"]


def test_service_name_and_default_dependencies(tmp_path: Path) -> None:
    decl, out = tmp_path / "decl", tmp_path / "out"
    out.mkdir()
    _write(decl / "db.container", "[Quadlet]\nDefaultDependencies=false\n"
           "[Container]\nImage=busybox\nServiceName=database\n"
           '[Install]\nAlias="dbalias.service"\n')
    units = generate(Scope.SYSTEM, out, dirs=[decl], report=lambda _: None)
    text = units["database.service"]
    assert "network-online.target" not in text and " launch db\n" in text
    assert os.readlink(out / "db.service") == "database.service"  # hostctl's verbs use it
    assert os.readlink(out / "dbalias.service") == "database.service"


@pytest.mark.parametrize(("line", "message"), [
    ("[Unit]\nRequires=web.kube", "'web.kube' refers to a .kube unit"),
    ("[Unit]\nAfter=app.build", "'app.build': hostctl generates no unit for a build"),
    ("[Quadlet]\nNoSuchKey=1", "unsupported [Quadlet] key 'NoSuchKey'"),
    ("[Container]\nGroup=100", "Group= is given without User="),
    ("[Install]\nDefaultInstance=1", "DefaultInstance= is for templates"),
])
def test_refused(tmp_path: Path, line: str, message: str) -> None:
    _write(tmp_path / "a.container", f"[Container]\nImage=busybox\n{line}\n")
    with pytest.raises(DeclarationError, match=re.escape(message)):
        load_declaration("a", Scope.SYSTEM, [tmp_path])


def test_runtime_ids_of_instances() -> None:
    assert runtime_id("web@7") == "web+7" and runtime_id("web") == "web"


def test_a_secret_as_an_environment_variable(tmp_path: Path) -> None:
    from hostctl.declarations.model import Secret

    _write(tmp_path / "a.container", "[Container]\nImage=busybox\n"
           "Secret=token,type=env,target=API_TOKEN\nSecret=plain,type=env\nSecret=file\n")
    c = load_declaration("a", Scope.SYSTEM, [tmp_path])
    assert c.secrets == (
        Secret("token", "token", "", "API_TOKEN"), Secret("plain", "plain", "", "plain"),
        Secret("file", "file", "/run/secrets/file"),
    )
    _write(tmp_path / "b.yaml", "image: busybox\nsecrets: [{name: t, env: T}]\n")
    assert load_declaration("b", Scope.SYSTEM, [tmp_path]).secrets == (Secret("t", "t", "", "T"),)
    _write(tmp_path / "c.container", "[Container]\nImage=busybox\nSecret=t,type=file\n")
    with pytest.raises(DeclarationError, match="'file' is not allowed"):
        load_declaration("c", Scope.SYSTEM, [tmp_path])


def test_type_oneshot_runs_the_container_to_its_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _write(tmp_path / "job.container", "[Container]\nImage=busybox\nExec=true\n"
           "[Service]\nType=oneshot\nRemainAfterExit=yes\n")
    units = generate(Scope.SYSTEM, out, dirs=[tmp_path], report=lambda _: None)
    text = units["job.service"]
    assert "Type=oneshot\n" in text and "Type=notify" not in text
    assert "RemainAfterExit=yes\n" in text and "TimeoutStartSec=infinity\n" in text
    assert load_declaration("job", Scope.SYSTEM, [tmp_path]).oneshot


@pytest.mark.parametrize(("service", "message"), [
    ("Type=simple", "Type=simple is not possible for a container"),
    ("RemainAfterExit=yes", "RemainAfterExit= is only for Type=oneshot"),
    ("Type=oneshot\n[Container]\nNotify=true", "Type=oneshot with Notify="),
])
def test_service_types_refused(tmp_path: Path, service: str, message: str) -> None:
    _write(tmp_path / "a.container", f"[Container]\nImage=busybox\n[Service]\n{service}\n")
    with pytest.raises(DeclarationError, match=re.escape(message)):
        load_declaration("a", Scope.SYSTEM, [tmp_path])


def test_a_dependency_on_an_undeclared_container_fails_its_unit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _write(tmp_path / "decl/web.container",
           "[Unit]\nRequires=db.container cache@%i.container\n"
           "[Container]\nImage=docker.io/library/busybox\n")
    _write(tmp_path / "decl/cache@.container", "[Container]\nImage=docker.io/library/busybox\n")
    reported: list[str] = []
    units = generate(Scope.SYSTEM, out, dirs=[tmp_path / "decl"], report=reported.append)
    assert reported == [
        f"{tmp_path / 'decl/web.container'}:2:Requires: db.container is not declared "
        "(hint: add db.container (or a YAML declaration named db), or name a unit instead)"
    ]
    assert "broken declaration" in units["web.service"]
    _write(tmp_path / "decl/db.yaml", "image: docker.io/library/busybox\n")
    reported.clear()
    units = generate(Scope.SYSTEM, out, dirs=[tmp_path / "decl"], report=reported.append)
    assert reported == [] and "Requires=db.service cache@%i.service\n" in units["web.service"]


def test_podman_meanings_of_syntax(tmp_path: Path) -> None:
    """Continuations joined as quadlet joins them (an empty line does not end one), an
    escape systemd does not know kept as written, VolatileTmp= as podman's /tmp."""
    from hostctl.declarations.model import Tmpfs

    _write(tmp_path / "a.container", "[Container]\nImage=busybox\nExec=echo a\\\n\n"
           "  b 'x\\.y'\nVolatileTmp=true\n")
    a = load_declaration("a", Scope.SYSTEM, [tmp_path])
    assert a.command == ("echo", "ab", "x\\.y")
    assert a.tmpfs == (Tmpfs("/tmp", ("rw", f"size={512 * 2**20}", "mode=1777")),)
    # the empty line after the backslash does not end it: Image= is swallowed
    _write(tmp_path / "b.container",
           "[Container]\nExec=echo \\\n   \nImage=docker.io/library/busybox\n")
    with pytest.raises(DeclarationError, match="no Image="):
        load_declaration("b", Scope.SYSTEM, [tmp_path])


def test_a_volume_file_gets_a_oneshot_unit_its_containers_wait_for(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    decl = tmp_path / "decl"
    _write(decl / "data.volume", "[Volume]\nDevice=/srv/data\nType=bind\n")
    _write(decl / "app.container", "[Container]\nImage=docker.io/library/busybox\n"
           "Volume=data.volume:/data:ro\n")
    _write(decl / "lost.container", "[Container]\nImage=docker.io/library/busybox\n"
           "Mount=type=volume,source=nothere.volume,destination=/x\n")
    reported: list[str] = []
    units = generate(Scope.SYSTEM, out, dirs=[decl], report=reported.append)
    volume = units["data-volume.service"]
    assert "Type=oneshot\n" in volume and "RemainAfterExit=yes\n" in volume
    assert " volume-setup data\n" in volume and " volume-release data\n" in volume
    assert "RequiresMountsFor=/srv/data\n" in volume
    app = units["app.service"]
    assert "Requires=data-volume.service\nAfter=data-volume.service\n" in app
    assert reported == [
        f"{decl / 'lost.container'}:3:Mount: nothere.volume is not declared (hint: add "
        "nothere.volume beside the container declarations, or name the volume nothere "
        "without .volume (made on first use))"
    ]
    c = load_declaration("app", Scope.SYSTEM, [decl])
    assert [(v.source, v.destination, v.read_only) for v in c.volumes] == [
        ("data", "/data", True)]


def test_an_image_file_is_pulled_ahead_by_its_unit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    decl = tmp_path / "decl"
    _write(decl / "base.image", "[Image]\nImage=docker.io/library/busybox:1.36\n"
           "Arch=aarch64\nRetry=2\nRetryDelay=1s\n")
    _write(decl / "app.container", "[Container]\nImage=base.image\n")
    units = generate(Scope.SYSTEM, out, dirs=[decl], report=lambda _: None)
    image = units["base-image.service"]
    assert "Type=oneshot\n" in image and " image-pull base\n" in image
    assert "After=network-online.target\n" in image
    assert "Requires=base-image.service\nAfter=base-image.service\n" in units["app.service"]
    app = load_declaration("app", Scope.SYSTEM, [decl])
    assert (app.image, app.platform) == ("docker.io/library/busybox:1.36", "linux/arm64")
    _write(decl / "lost.container", "[Container]\nImage=nothere.image\n")
    with pytest.raises(DeclarationError, match=r"nothere\.image is not declared"):
        load_declaration("lost", Scope.SYSTEM, [decl])


def test_the_yaml_form_of_a_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/etc/hostctl/volumes/NAME.yaml: the same volume unit, and every container naming
    the volume waits for it (YAML or quadlet, with or without .volume)."""
    from hostctl.declarations.volume_file import load_volume

    monkeypatch.setenv("HOSTCTL_CONFIG_DIR", str(tmp_path / "etc"))
    monkeypatch.setenv("HOSTCTL_GENERATOR_CACHE", "off")
    _write(tmp_path / "etc/volumes/cache.yaml", "uid: 1000\ncopy: false\n")
    decl, out = tmp_path / "decl", tmp_path / "out"
    out.mkdir()
    _write(decl / "app.yaml", "image: docker.io/library/busybox\nvolumes: [cache:/c]\n")
    units = generate(Scope.SYSTEM, out, dirs=[decl], report=lambda _: None)
    assert " volume-setup cache\n" in units["cache-volume.service"]
    assert "Requires=cache-volume.service\n" in units["app.service"]
    cache = load_volume(tmp_path / "etc/volumes/cache.yaml")
    assert (cache.name, cache.uid, cache.copy) == ("cache", 1000, False)
    _write(tmp_path / "etc/volumes/bad.yaml", "uid: 1\nlabel: x\n")
    with pytest.raises(DeclarationError) as caught:
        load_volume(tmp_path / "etc/volumes/bad.yaml")
    assert caught.value.where == f"{tmp_path / 'etc/volumes/bad.yaml'}:2:label"


def test_a_start_naming_other_quadlet_files_is_never_recorded(tmp_path: Path) -> None:
    """Image=NAME.image (or .build, Volume=NAME.volume) reads files that are not among a
    start record's inputs: such a start must go the full way each time."""
    from hostctl.launcher.recording import eligible

    _write(tmp_path / "base.image", "[Image]\nImage=docker.io/library/busybox:1.36\n")
    _write(tmp_path / "a.container", "[Container]\nImage=base.image\nNetwork=host\n")
    _write(tmp_path / "b.container",
           "[Container]\nImage=docker.io/library/busybox:1.36\nNetwork=host\n")
    config = {"linux": {"cgroupsPath": "system.slice:x:y"}}
    a = load_declaration("a", Scope.SYSTEM, [tmp_path])
    b = load_declaration("b", Scope.SYSTEM, [tmp_path])
    assert not eligible(a, Scope.SYSTEM, config)
    assert eligible(b, Scope.SYSTEM, config)


def test_a_broken_volume_file_fails_the_containers_naming_it(tmp_path: Path) -> None:
    decl, out = tmp_path / "decl", tmp_path / "out"
    out.mkdir()
    _write(decl / "data.volume", "[Volume]\nDriver=image\n")
    _write(decl / "app.container", "[Container]\nImage=docker.io/library/busybox\n"
           "Volume=data.volume:/data\n")
    reported: list[str] = []
    units = generate(Scope.SYSTEM, out, dirs=[decl], report=reported.append)
    assert "data-volume.service" not in units and "broken declaration" in units["app.service"]
    assert reported[0].startswith(f"{decl / 'data.volume'}:2:Driver: volume driver 'image'")
    assert reported[1].startswith(
        f"{decl / 'app.container'}:3:Volume: data.volume cannot be used: {decl / 'data.volume'}")


def test_dependencies_on_volume_and_image_files(tmp_path: Path) -> None:
    decl, out = tmp_path / "decl", tmp_path / "out"
    out.mkdir()
    _write(decl / "data.volume", "[Volume]\n")
    _write(decl / "base.image", "[Image]\nImage=docker.io/library/busybox:1.36\n")
    _write(decl / "app.container", "[Unit]\nRequires=data.volume base.image\n"
           "[Container]\nImage=docker.io/library/busybox:1.36\n")
    _write(decl / "lost.container", "[Unit]\nWants=gone.volume\n"
           "[Container]\nImage=docker.io/library/busybox:1.36\n")
    reported: list[str] = []
    units = generate(Scope.SYSTEM, out, dirs=[decl], report=reported.append)
    assert "Requires=data-volume.service base-image.service\n" in units["app.service"]
    assert reported == [f"{decl / 'lost.container'}:2:Wants: gone.volume is not declared "
                        "(hint: add gone.volume beside the container declarations, or name "
                        "the volume gone without .volume (made on first use))"]
