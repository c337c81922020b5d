"""podman's own quadlet test files: every one whose keys hostctl supports validates with
the meaning podman gives it; every other one fails with an error naming the key or the
value, at FILE:LINE:KEY."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hostctl.declarations.model import Device, Port, Tmpfs, Ulimit, Volume, VolumeKind
from hostctl.declarations.quadlet_reader import load_quadlet
from hostctl.errors import DeclarationError

CORPUS = Path("/work/shared/quadlet-corpus")
if not CORPUS.is_dir():
    CORPUS = Path(__file__).parent / "quadlet-corpus"
FILES = sorted(CORPUS.glob("*.container"))

# Files hostctl reads, and files it must refuse: the test fails when one moves.
VALID = {
    "annotation", "capabilities2", "devices", "dns", "entrypoint-empty", "env-file",
    "escapes", "exec", "host", "image", "label", "merged-override", "notify",
    "other-sections", "readonly-tmpfs", "readwrite-notmpfs", "reloadsignal", "shortname",
    "stoptimeout", "ulimit", "volatiletmp-readonly", "workingdir",
    "dns-options", "basepodman", "network", "health-cmd-shell-quotes", "template@instance",
    "network.quadlet.servicename",  # the network that service-name.network declares
    "mount.servicename",  # the volume that service-name.volume declares
    "env-host", "httpproxy-false", "ip", "logdriver", "mask", "unmask", "seccomp", "volume",
    "reloadcmd-unsupported-escape",
    "startwithpod@foo", "startwithpod_yes",  # members of startwithpod.pod
}  # fmt: skip
NETWORKS = sorted(CORPUS.glob("*.network"))
VALID_NETWORKS = {"basic", "disable-dns", "gateway", "internal", "options"}
VOLUMES = sorted(CORPUS.glob("*.volume"))
VALID_VOLUMES = {"basic", "device-bind", "device"}
IMAGES = sorted(CORPUS.glob("*.image"))
VALID_IMAGES = {"arch", "basic", "no_deps", "policy", "variant"}
BUILDS = sorted(CORPUS.glob("*.build"))
VALID_BUILDS = {
    "buildarg", "file-rel", "no-workingdirectory-systemd-specifier", "setworkingdirectory-is-abs",
    "setworkingdirectory-is-file-abs", "target",
}


def _load(path: Path) -> object:
    """The file read as hostctl reads it: a template (NAME@) as one of its instances."""
    stem = path.name.removesuffix(".container")
    return load_quadlet(path, f"{stem}1" if stem.endswith("@") else stem)


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 60


def test_how_many_files_map_fully() -> None:
    """The count of .container files hostctl reads with podman's meaning (40 of 64:
    the rest use image or artifact mounts, random host ports,
    other containers' networks, SELinux labels, user namespace mappings, GroupAdd=
    keep-groups (which older hostctl took for a group's name), or are files podman
    itself refuses)."""
    read = 0
    for path in FILES:
        try:
            _load(path)
            read += 1
        except DeclarationError:
            continue  # refused: not counted
    assert read == len(VALID) == 40


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_validates_or_names_what_is_wrong(path: Path) -> None:
    text = path.read_text()
    stem = path.name.removesuffix(".container")
    if stem in VALID:
        assert "assert-failed" not in text
        _load(path)
        return
    with pytest.raises(DeclarationError) as caught:
        _load(path)
    err = caught.value
    assert err.where and err.where.startswith(str(path)), err
    assert err.hint, err
    located = re.fullmatch(rf"{re.escape(str(path))}:(\d+):(\w+)", err.where)
    if located:  # the error's line holds its key, and the message or hint is specific
        line = text.splitlines()[int(located[1]) - 1]
        assert line.startswith(f"{located[2]}="), (err, line)
        value = line.partition("=")[2]
        assert located[2] in err.message or any(
            word.strip("\"'") in str(err) for word in re.split(r"[\s,=:]+", value) if word
        ), err
    else:  # file-wide: the name or a missing Image=
        assert stem in err.message or "Image=" in err.message, err



def test_meanings_carry_over() -> None:
    escapes = load_quadlet(CORPUS / "escapes.container")
    assert escapes.command == (
        "/some/path", "an arg", "a;b\nc\td'e", "a;b\nc\td", 'a"b', "Hello World",
    )
    assert load_quadlet(CORPUS / "entrypoint-empty.container").entrypoint == ()
    assert load_quadlet(CORPUS / "ulimit.container").ulimits == (
        Ulimit("nproc", 1234, 5678), Ulimit("cpu", 1234, 5678),
    )
    assert load_quadlet(CORPUS / "devices.container").devices == (
        Device("/dev/fuse", "/dev/fuse"), Device("/dev/loop0", "/dev/loop0", "r"),
        Device("/dev/null", "/dev/test", optional=True),
        Device("/dev/bogus", "/dev/bogus", "r", optional=True),
        Device("/dev/bogus1", "/dev/bogus1", optional=True),
    )
    assert load_quadlet(CORPUS / "notify.container").notify is True
    assert load_quadlet(CORPUS / "env-host.container").env_host is True
    assert load_quadlet(CORPUS / "httpproxy-false.container").http_proxy is False
    ip = load_quadlet(CORPUS / "ip.container")
    assert (ip.ip, ip.ip6) == ("10.88.64.128", "fd46:db93:aa76:ac37::10")
    assert str(load_quadlet(CORPUS / "logdriver.container").log_driver) == "journald"
    assert load_quadlet(CORPUS / "mask.container").mask == (
        "/proc/sys/foo", "/proc/sys/bar", "/proc/sys/foobar")
    assert load_quadlet(CORPUS / "unmask.container").unmask == (
        "/proc/sys/foo", "/proc/sys/bar", "ALL")
    assert load_quadlet(CORPUS / "seccomp.container").seccomp_profile == "unconfined"
    # podman keeps an escape it does not know (relaxed C unescaping): the word test\.sh
    reload = load_quadlet(CORPUS / "reloadcmd-unsupported-escape.container")
    assert reload.reload_cmd == ("test\\.sh",)
    volume = load_quadlet(CORPUS / "volume.container").volumes
    assert Volume("", "/container/empty", VolumeKind.ANONYMOUS) in volume
    assert Volume("basic", "/container/quadlet", VolumeKind.VOLUME) in volume
    # podman passes HealthCmd= as one --health-cmd argument: a shell command line
    assert load_quadlet(CORPUS / "health-cmd-shell-quotes.container").health_cmd == (
        "CMD-SHELL", "/bin/sh -c \"echo 'hello world!'\"")
    readonly = load_quadlet(CORPUS / "readonly-tmpfs.container")
    assert readonly.read_only and {t.destination for t in readonly.tmpfs} >= {"/tmp", "/run"}
    other = load_quadlet(CORPUS / "other-sections.container")
    assert other.unit == (("Foo", ("bar1",)), ("Foo", ("bar2",)))
    env_file = load_quadlet(CORPUS / "env-file.container")
    assert env_file.env_files[:3] == ("/opt/env/abs-1", "/opt/env/abs-2", str(CORPUS / "rel-1"))
    assert env_file.env_files[3] == str(Path.home() / "env")


def test_every_supported_key_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "all.container"
    path.write_text("""\
[Unit]
After=db.service
[Container]
Image=docker.io/library/busybox:1.36
Exec=sleep "1 2"
Entrypoint=/bin/sh
Environment=A=1 "B=x y"
EnvironmentFile=/etc/app.env
WorkingDir=/srv
User=app
Group=app
GroupAdd=audio 1001
Volume=/srv/data:/data:ro
Mount=type=volume,source=cache,destination=/cache
Mount=type=bind,src=/etc/ssl,dst=/ssl,ro=true
Mount=type=tmpfs,destination=/scratch,tmpfs-size=64M
Tmpfs=/tmp:mode=1777
ShmSize=128M
ReadOnly=true
ReadOnlyTmpfs=false
AddCapability=NET_ADMIN sys_time
DropCapability=ALL
NoNewPrivileges=true
AddDevice=/dev/fuse:rw
Ulimit=nofile=100:200
Sysctl=net.ipv4.ip_forward=1
Timezone=UTC
RunInit=yes
Notify=no
StopSignal=SIGINT
StopTimeout=20
ReloadSignal=SIGUSR1
Memory=1G
PidsLimit=100
Label=a=b
Annotation=c=d
Secret=token,type=mount,target=/etc/token
Network=host
PublishPort=127.0.0.1:8080:80/tcp
HostName=box
Pull=never
AddHost=db:192.0.2.1
DNS=192.0.2.53
DNSSearch=example.com
DNSOption=ndots:1
[Service]
Restart=always
Nice=5
[Install]
WantedBy=default.target
""")
    c = load_quadlet(path)
    assert c.command == ("sleep", "1 2") and c.entrypoint == ("/bin/sh",)
    assert c.env == (("A", "1"), ("B", "x y")) and c.env_files == ("/etc/app.env",)
    assert (c.workdir, c.user, c.group, c.groups) == ("/srv", "app", "app", ("audio", "1001"))
    assert c.volumes == (
        Volume("/srv/data", "/data", VolumeKind.BIND, read_only=True),
        Volume("cache", "/cache", VolumeKind.VOLUME),
        Volume("/etc/ssl", "/ssl", VolumeKind.BIND, read_only=True),
    )
    assert c.tmpfs == (Tmpfs("/scratch", (f"size={64 * 2**20}",)), Tmpfs("/tmp", ("mode=1777",)))
    assert (c.shm_size, c.read_only, c.no_new_privileges) == (128 * 2**20, True, True)
    assert (c.cap_add, c.cap_drop) == (("CAP_NET_ADMIN", "CAP_SYS_TIME"), ("ALL",))
    assert c.devices == (Device("/dev/fuse", "/dev/fuse", "rw"),)
    assert c.ulimits == (Ulimit("nofile", 100, 200),)
    assert c.sysctls == (("net.ipv4.ip_forward", "1"),)
    assert (c.timezone, c.init, c.notify) == ("UTC", True, False)
    assert (c.stop_signal, c.stop_timeout, c.reload_signal) == ("SIGINT", 20, "SIGUSR1")
    assert (c.memory, c.pids_limit) == (2**30, 100)
    assert (c.labels, c.annotations) == ((("a", "b"),), (("c", "d"),))
    assert [(s.name, s.target) for s in c.secrets] == [("token", "/etc/token")]
    assert (c.network, c.hostname, str(c.pull)) == ("host", "box", "never")
    assert c.ports == (Port("127.0.0.1", 8080, 80),)
    assert (c.add_hosts, c.dns, c.dns_search, c.dns_options) == (
        (("db", "192.0.2.1"),), ("192.0.2.53",), ("example.com",), ("ndots:1",),
    )
    assert c.unit == (("After", ("db.service",)),)
    assert (str(c.restart), c.service) == ("always", (("Nice", ("5",)),))
    assert c.install == (("WantedBy", ("default.target",)),)


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("PodmanArgs=--foo", "4:PodmanArgs", "unsupported key 'PodmanArgs'"),
        ("PodmanArgs=--ip 10.0.0.2 --foo", "4:PodmanArgs", "--ip: IP= (no key for --foo)"),
        ("UIDMap=0:10000:10", "4:UIDMap", "mapping would need the image's files"),
        ("UserNS=keep-id", "4:UserNS", "only UserNS=host"),
        ("ContainerName=other", "4:ContainerName", "rename the file to other.container"),
        ("CgroupsMode=no-conmon", "4:CgroupsMode", "only CgroupsMode=split"),
        ("GroupAdd=keep-groups", "4:GroupAdd", "keep-groups is not supported"),
        ("Mask=ALL", "4:Mask", "ALL can only be unmasked"),
        ("IP=10.0.0.300", "4:IP", "not an IPv4 address"),
        ("IP6=10.0.0.3", "4:IP6", "not an IPv6 address"),
        ("LogDriver=k8s-file", "4:LogDriver", "the container's output is in the journal"),
        ("LogDriver=syslog", "4:LogDriver", "journald, passthrough, none"),
        ("Retry=3", "4:Retry", "NAME.image"),
        ("ReloadCmd=x\nReloadSignal=HUP", "4:ReloadCmd", "a reload command and a reload"),
        ("Enviroment=A=1", "4:Enviroment", "did you mean 'Environment'"),
        ("Volume=x@.volume:/x", "4:Volume", "'x@.volume' is a template volume"),
        ("Network=web.network:ip=10.0.0.2", "4:Network", "option 'ip=10.0.0.2' is not supp"),
        ("Image=web.kube", "4:Image", "refers to a quadlet unit"),
        ("Image=web.image", "4:Image", "web.image is not declared"),
        ("Memory=lots", "4:Memory", "not a size"),
        ("Exec=sh 'unclosed", "4:Exec", "unclosed"),
        ("Volume=%Z/x:/x", "4:Volume", "specifier %Z"),
    ],
)
def test_bad_lines_name_file_line_and_key(
    tmp_path: Path, line: str, where: str, message: str
) -> None:
    path = tmp_path / "bad.container"
    path.write_text(f"# comment\n[Container]\nImage=busybox\n{line}\n")
    with pytest.raises(DeclarationError) as caught:
        load_quadlet(path)
    assert caught.value.where == f"{path}:{where}"
    assert message in str(caught.value)


def test_template_instance_with_drop_ins(tmp_path: Path) -> None:
    """template@instance.container: the instance's drop-in changes the image; %i is the
    instance; a Requires= on a .container names its generated unit."""
    from hostctl.declarations.search import load_file

    shutil.copy(CORPUS / "template@instance.container", tmp_path)
    dropins = tmp_path / "template@instance.container.d"
    dropins.mkdir()
    (dropins / "10-image.conf").write_text("[Container]\nImage=localhost/changed-image\n")
    (tmp_path / "container.d").mkdir()
    (tmp_path / "container.d" / "20-env.conf").write_text(
        "[Container]\nEnvironment=FOO=bar\n[Unit]\nRequires=db.container\n")
    c = load_file(tmp_path / "template@instance.container", "template@instance")
    assert c.image == "localhost/changed-image"
    assert c.env == (("FOO", "bar"),)
    assert c.unit == (("Requires", ("db.service",)),)
    assert c.install == (("WantedBy", ("want.service",)),)


def test_dependencies_on_other_kinds_name_the_unit() -> None:
    with pytest.raises(DeclarationError) as caught:
        load_quadlet(CORPUS / "dependent.container")
    assert caught.value.where == f"{CORPUS / 'dependent.container'}:6:After"
    assert "'basic.build': hostctl generates no unit for a build" in str(caught.value)


@pytest.mark.parametrize("path", NETWORKS, ids=lambda p: p.name)
def test_each_network_file_validates_or_names_what_is_wrong(path: Path) -> None:
    from hostctl.network import defs

    text = path.read_text()
    stem = path.name.removesuffix(".network")
    if stem in VALID_NETWORKS:
        assert "assert-failed" not in text
        defs.load(path)
        return
    with pytest.raises(DeclarationError) as caught:
        defs.load(path)
    err = caught.value
    assert err.where and err.where.startswith(str(path)) and err.hint, err
    located = re.fullmatch(rf"{re.escape(str(path))}:(\d+):(\w+)", err.where)
    if located:
        assert text.splitlines()[int(located[1]) - 1].startswith(f"{located[2]}="), err
    else:
        assert stem in err.message, err


def test_network_meanings_carry_over() -> None:
    import ipaddress

    from hostctl.network import defs

    gateway = defs.load(CORPUS / "gateway.network")
    assert (str(gateway.subnet), str(gateway.gateway)) == ("192.168.1.0/24", "192.168.1.1")
    assert defs.load(CORPUS / "internal.network").internal
    assert defs.load(CORPUS / "disable-dns.network").names is False
    assert defs.load(CORPUS / "options.network").mtu == 1504
    basic = defs.load(CORPUS / "basic.network")
    assert (basic.name, basic.internal, basic.names, basic.ip_range) == (
        "basic", False, True, None)
    with pytest.raises(DeclarationError, match="cannot set more ranges than subnets"):
        defs.load(CORPUS / "range.less-subnet.network")
    with pytest.raises(DeclarationError, match="cannot set gateway or range without subnet"):
        defs.load(CORPUS / "range.no-subnet.network")
    c = load_quadlet(CORPUS / "network.quadlet.servicename.container")
    assert c.network == "service-name"
    m = load_quadlet(CORPUS / "mount.servicename.container")
    assert m.volumes == (
        Volume("service-name", "/path/in/container", VolumeKind.VOLUME, read_only=True),)
    assert m.unit_refs == (("volume", "service-name",
                            f"{CORPUS / 'mount.servicename.container'}:6:Mount"),)
    assert ipaddress.ip_network("10.90.0.0/16").supernet_of(basic.subnet)


@pytest.mark.parametrize("path", VOLUMES, ids=lambda p: p.name)
def test_each_volume_file_validates_or_names_what_is_wrong(path: Path) -> None:
    from hostctl.declarations.volume_file import load_volume

    text = path.read_text()
    stem = path.name.removesuffix(".volume")
    if stem in VALID_VOLUMES:
        assert "assert-failed" not in text
        load_volume(path)
        return
    with pytest.raises(DeclarationError) as caught:
        load_volume(path)
    err = caught.value
    assert err.where and err.where.startswith(str(path)) and err.hint, err
    located = re.fullmatch(rf"{re.escape(str(path))}:(\d+):(\w+)", err.where)
    assert located, err
    assert text.splitlines()[int(located[1]) - 1].startswith(f"{located[2]}="), err


def test_volume_meanings_carry_over() -> None:
    from hostctl.declarations.volume_file import load_volume

    device = load_volume(CORPUS / "device.volume")  # User=root Group=11: mount options
    assert (device.device, device.fs_type, device.options, device.copy) == (
        "/dev/vda1", "btrfs", "uid=0,gid=11,rw,compress=zstd", False)
    bind = load_volume(CORPUS / "device-bind.volume")
    assert (bind.device, bind.fs_type, bind.copy) == ("/var/lib/data", "bind", False)
    basic = load_volume(CORPUS / "basic.volume")
    assert (basic.name, basic.device, basic.copy, basic.unit_name) == (
        "basic", None, True, "basic-volume.service")


@pytest.mark.parametrize("path", BUILDS, ids=lambda p: p.name)
def test_each_build_file_validates_or_names_what_is_wrong(path: Path) -> None:
    from hostctl.declarations.build_file import load_build

    text = path.read_text()
    if path.name.removesuffix(".build") in VALID_BUILDS:
        assert "assert-failed" not in text
        load_build(path)
        return
    with pytest.raises(DeclarationError) as caught:
        load_build(path)
    err = caught.value
    assert err.where and err.hint, err
    located = re.fullmatch(rf"{re.escape(str(path))}:(\d+):(\w+)", err.where)
    assert located, err
    assert text.splitlines()[int(located[1]) - 1].startswith(f"{located[2]}="), err


def test_build_meanings_carry_over(tmp_path: Path) -> None:
    from hostctl.declarations.build_file import load_build
    from hostctl.declarations.model import Build

    tag, build = load_build(CORPUS / "buildarg.build")
    assert tag == "image:latest" and build == Build(str(CORPUS), None, (
        ("FOO", "BAR"), ("BIZ", "BAZ"), ("MULTIPLE", "ARGUMENTS"), ("WORKS", "FINE")))
    assert load_build(CORPUS / "setworkingdirectory-is-file-abs.build")[1] == Build(
        "/etc/containers/systemd", "Containerfile")
    assert load_build(CORPUS / "target.build")[1].target == "my-app"
    shutil.copy(CORPUS / "target.build", tmp_path / "app.build")
    (tmp_path / "app.container").write_text("[Container]\nImage=app.build\n")
    c = load_quadlet(tmp_path / "app.container")
    assert (c.image, c.build) == ("localhost/imagename", Build(str(tmp_path), None, (), "my-app"))
    with pytest.raises(DeclarationError) as caught:  # said at the Image= line
        load_quadlet(CORPUS / "build.multiple-tags.container")
    assert caught.value.where == f"{CORPUS / 'build.multiple-tags.container'}:4:Image"
    assert "multiple-tags.build:6:ImageTag: a second ImageTag=" in str(caught.value)


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_each_image_file_validates_or_names_what_is_wrong(path: Path) -> None:
    from hostctl.declarations.image_file import load_image

    text = path.read_text()
    if path.name.removesuffix(".image") in VALID_IMAGES:
        assert "assert-failed" not in text
        load_image(path)
        return
    with pytest.raises(DeclarationError) as caught:
        load_image(path)
    err = caught.value
    located = re.fullmatch(rf"{re.escape(str(path))}:(\d+):(\w+)", err.where or "")
    assert located and err.hint, err
    assert text.splitlines()[int(located[1]) - 1].startswith(f"{located[2]}="), err


def test_image_meanings_carry_over() -> None:
    from hostctl.declarations.image_file import load_image

    assert load_image(CORPUS / "arch.image").platform == "linux/arm64"  # aarch64
    assert load_image(CORPUS / "variant.image").platform == "linux/arm/v5"
    assert load_image(CORPUS / "policy.image").policy == "always"
    basic = load_image(CORPUS / "basic.image")
    assert (basic.reference, basic.policy, basic.default_dependencies) == (
        "localhost/imagename", "missing", True)
    assert load_image(CORPUS / "no_deps.image").default_dependencies is False
