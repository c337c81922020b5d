"""Pods' declaration layer: the settings table, the .pod and YAML readers, `pod:`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from hostctl.declarations.kinds import ExitPolicy
from hostctl.declarations.model import Port, Volume, VolumeKind
from hostctl.declarations.pod_file import Pod, load_pod, pod_files, pods_dir
from hostctl.declarations.pod_settings import POD_SETTINGS
from hostctl.declarations.quadlet_reader import parse_quadlet
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError

CORPUS = Path("/work/shared/quadlet-corpus")
if not CORPUS.is_dir():
    CORPUS = Path(__file__).parent / "quadlet-corpus"
PODS = sorted(CORPUS.glob("*.pod"))
VALID_PODS = {"basic", "dns-option", "dns", "hostname", "label", "network.quadlet",
              "service-name", "startwithpod", "network-alias"}


def test_every_pod_setting_is_a_field_and_back() -> None:
    fields = {f.name for f in dataclasses.fields(Pod)}
    assert fields - {"name", "source", "unit_refs", "locations"} == {s.key for s in POD_SETTINGS}
    defaults = {f.name: f.default for f in dataclasses.fields(Pod)}
    assert all(defaults[s.key] == s.default for s in POD_SETTINGS)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_two_forms_read_the_same(tmp_path: Path) -> None:
    quadlet = _write(tmp_path, "shop.pod", """\
[Pod]
PodName=store
PublishPort=8080:80
PublishPort=127.0.0.1:5353:53/udp
HostName=front
DNS=192.0.2.53
DNSSearch=example.com
DNSOption=ndots:2
AddHost=db.local:192.0.2.10
Volume=/srv/shared:/shared:ro
Volume=cache.volume:/cache
ShmSize=128M
Label=team=web
ExitPolicy=continue
StopTimeout=20
ServiceName=shop-main
[Quadlet]
DefaultDependencies=false
[Unit]
Description=the shop
[Service]
CPUWeight=50
[Install]
WantedBy=multi-user.target
""")
    (tmp_path / "pods").mkdir()
    yaml = _write(tmp_path / "pods", "shop.yaml", """\
pod_name: store
ports: ["8080:80", "127.0.0.1:5353:53/udp"]
hostname: front
dns: [192.0.2.53]
dns_search: [example.com]
dns_options: ["ndots:2"]
add_hosts: ["db.local:192.0.2.10"]
volumes: ["/srv/shared:/shared:ro", "cache:/cache"]
shm_size: 128M
labels: {team: web}
exit_policy: continue
stop_timeout: 20
service_name: shop-main
default_dependencies: false
unit: {Description: the shop}
service: {CPUWeight: 50}
install: {WantedBy: multi-user.target}
""")
    a, b = load_pod(quadlet), load_pod(yaml)
    assert a == dataclasses.replace(b, source=quadlet)
    assert a.ports == (Port(None, 8080, 80), Port("127.0.0.1", 5353, 53, "udp"))  # type: ignore[arg-type]
    assert a.volumes[1] == Volume("cache", "/cache", VolumeKind.VOLUME)
    assert (a.shm_size, a.exit_policy, a.stop_timeout) == (128 << 20, ExitPolicy.CONTINUE, 20)
    assert (a.unit_name, a.display_name, a.members_hostname) == (
        "shop-main.service", "store", "front")
    assert a.unit_refs == ((("volume", "cache", f"{quadlet}:11:Volume")),)
    assert a.where("PublishPort") == f"{quadlet}:3:PublishPort"


def test_defaults_and_an_empty_yaml(tmp_path: Path) -> None:
    pod = load_pod(_write(tmp_path, "web.yaml", "# nothing\n"))
    assert (pod.name, pod.network, pod.unit_name, pod.members_hostname, pod.exit_policy) == (
        "web", "bridge", "web-pod.service", "web", ExitPolicy.STOP)


@pytest.mark.parametrize(("text", "where", "message"), [
    ("[Pod]\nNetwork=host\nIP=10.0.0.2\n", "3:IP", "ip with network host"),
    ("[Pod]\nNetwork=none\nNetworkAlias=a\n", "3:NetworkAlias",
     "network_aliases with network none"),
    ("[Pod]\nIP6=10.0.0.2\n", "2:IP6", "10.0.0.2"),
    ("[Pod]\nUserNS=auto\n", "2:UserNS", "unsupported key 'UserNS'"),
    ("[Pod]\nPublishPorts=80:80\n", "2:PublishPorts", "unsupported key"),
    ("[Pod]\nNetwork=host\nPublishPort=80:80\n", "3:PublishPort", "network host"),
    ("[Pod]\nStopTimeout=soon\n", "2:StopTimeout", "soon"),
    ("[Service]\nExecStart=/bin/true\n", "2:ExecStart", "set by hostctl"),
    ("[Container]\nImage=x\n", "2:Image", "[Container]"),
    ("[Pod]\nExitPolicy=restart\n", "2:ExitPolicy", "restart"),
])
def test_bad_pod_lines_name_file_line_and_key(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = _write(tmp_path, "p.pod", text)
    with pytest.raises(DeclarationError) as caught:
        load_pod(path)
    assert caught.value.where == f"{path}:{where}" and message in str(caught.value)
    assert caught.value.hint


def test_bad_yaml_keys_name_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.yaml", "network: host\nimage: x\n")
    with pytest.raises(DeclarationError) as caught:
        load_pod(path)
    assert caught.value.where == f"{path}:2:image" and "unknown key" in str(caught.value)


def test_pod_files_finds_both_forms_quadlet_first(tmp_path: Path) -> None:
    decl, config = tmp_path / "containers", tmp_path / "etc"
    decl.mkdir()
    pods_dir(config).mkdir(parents=True)
    _write(decl, "a.pod", "[Pod]\n")
    _write(pods_dir(config), "a.yaml", "")
    _write(pods_dir(config), "b.yml", "")
    (decl / "c.pod").symlink_to("/dev/null")
    _write(pods_dir(config), "c.yaml", "")
    assert pod_files([decl], pods_dir(config)) == {
        "a": decl / "a.pod", "b": pods_dir(config) / "b.yml"}


def test_members_name_the_pod_in_both_forms() -> None:
    c = parse_quadlet("[Container]\nImage=x\nPod=shop.pod\nStartWithPod=no\n", Path("m.container"))
    assert (c.pod, c.start_with_pod) == ("shop", False)
    assert c.unit_refs == (("pod", "shop", "m.container:3:Pod"),)
    y = parse_yaml("image: x\npod: shop\n", Path("m.yaml"))
    assert (y.pod, y.start_with_pod) == ("shop", True)
    deps = parse_quadlet("[Unit]\nAfter=shop.pod\n[Container]\nImage=x\n", Path("d.container"))
    assert deps.unit == (("After", ("shop-pod.service",)),)


@pytest.mark.parametrize(("text", "where", "message"), [
    ("[Container]\nImage=x\nPod=shop.pod\nNetwork=host\n", "4:Network", "cannot set network"),
    ("[Container]\nImage=x\nPod=shop.pod\nPublishPort=80:80\n", "4:PublishPort", "ports"),
    ("[Container]\nImage=x\nHostName=a\nPod=shop.pod\n", "3:HostName", "hostname"),
    ("[Container]\nImage=x\nPod=shop.pod\nDNS=192.0.2.1\n", "4:DNS", "dns"),
    ("[Container]\nImage=x\nPod=shop\n", "3:Pod", "not Quadlet based"),
])
def test_a_member_cannot_set_what_the_pod_owns(text: str, where: str, message: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        parse_quadlet(text, Path("m.container"))
    assert caught.value.where == f"m.container:{where}" and message in str(caught.value)
    with pytest.raises(DeclarationError, match="cannot set ports"):
        parse_yaml("image: x\npod: shop\nports: ['80:80']\n", Path("m.yaml"))


@pytest.mark.parametrize("path", PODS, ids=lambda p: p.name)
def test_each_corpus_pod_validates_or_names_the_key(path: Path) -> None:
    text = path.read_text()
    if path.name.removesuffix(".pod") in VALID_PODS:
        assert "assert-failed" not in text
        load_pod(path)
        return
    with pytest.raises(DeclarationError) as caught:
        load_pod(path)
    err = caught.value
    assert err.where and err.where.startswith(f"{path}:") and err.hint, err
    line, key = err.where.removeprefix(f"{path}:").split(":")
    assert text.splitlines()[int(line) - 1].startswith(f"{key}="), err


def test_corpus_pod_meanings_carry_over() -> None:
    assert load_pod(CORPUS / "dns.pod").dns == ("8.7.7.7", "8.8.8.8")
    assert load_pod(CORPUS / "hostname.pod").hostname == "my-host-name"
    named = load_pod(CORPUS / "service-name.pod")
    assert (named.unit_name, named.display_name) == ("basic.service", "test-pod")
    assert load_pod(CORPUS / "network.quadlet.pod").network == "basic"
    assert dict(load_pod(CORPUS / "label.pod").labels)["org.foo.Arg2"] == "arg 2"
    assert load_pod(CORPUS / "basic.pod").unit_name == "basic-pod.service"
    assert load_pod(CORPUS / "network-alias.pod").network_aliases == ("name", "othername")


def test_a_pods_address_and_names_in_both_forms(tmp_path: Path) -> None:
    quadlet = _write(tmp_path, "shop.pod", "[Pod]\nNetwork=backend.network\nIP=10.90.5.20\n"
                     "IP6=fd00:90:5::20\nNetworkAlias=api\nNetworkAlias=store\n")
    yaml = _write(tmp_path, "shop.yaml", "network: backend\nip: 10.90.5.20\n"
                  "ip6: fd00:90:5::20\nnetwork_aliases: [api, store]\n")
    a, b = load_pod(quadlet), load_pod(yaml)
    assert a == dataclasses.replace(b, source=quadlet)
    assert (a.ip, a.ip6, a.network_aliases) == ("10.90.5.20", "fd00:90:5::20", ("api", "store"))
    for path, where in ((quadlet, f"{quadlet}:3:IP"), (yaml, f"{yaml}:2:ip")):
        with pytest.raises(DeclarationError) as caught:
            load_pod(path, user=True)
        assert caught.value.where == where and "a user's pod cannot have ip" in str(caught.value)


def test_a_pod_on_a_declared_network_is_known_by_its_members_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.declarations.dirs import ENV_PATH
    from hostctl.paths import Scope
    from hostctl.pod import holder

    etc = tmp_path / "etc"
    etc.mkdir()
    monkeypatch.setenv(ENV_PATH, str(etc))
    (etc / "web.yaml").write_text("image: localhost/busybox:latest\npod: shop\n")
    (etc / "db.yaml").write_text("image: localhost/busybox:latest\npod: shop\n")
    (etc / "other.yaml").write_text("image: localhost/busybox:latest\n")
    pod = load_pod(_write(tmp_path, "shop.pod", "[Pod]\nPodName=store\nNetwork=backend\n"
                          "IP=10.90.5.20\nNetworkAlias=api\n"))
    stand_in = holder._network_stand_in(pod, Scope.SYSTEM)
    assert (stand_in.name, stand_in.ip, stand_in.network) == ("shop-pod", "10.90.5.20",
                                                              "backend")
    assert stand_in.network_aliases == ("store", "api", "db", "web")
    bridge = load_pod(_write(tmp_path, "lan.pod", "[Pod]\nIP=10.88.0.9\n"))
    assert holder._network_stand_in(bridge, Scope.SYSTEM).network_aliases == ()


def test_generator_renders_the_pod_unit_and_binds_its_members(tmp_path: Path) -> None:
    from hostctl.paths import Scope
    from hostctl.units.generator import generate
    from tests.unit.test_units_syntax import parse_unit, values

    _write(tmp_path, "shop.pod", "[Pod]\nPublishPort=8080:80\nServiceName=shop-main\n"
           "StopTimeout=20\n[Install]\nWantedBy=multi-user.target\n")
    _write(tmp_path, "web.container", "[Container]\nImage=docker.io/library/a:1\nPod=shop.pod\n")
    _write(tmp_path, "db.yaml", "image: docker.io/library/a:1\npod: shop\n"
           "start_with_pod: false\n")
    _write(tmp_path, "lost.container", "[Container]\nImage=docker.io/library/a:1\n"
           "Pod=nowhere.pod\n")
    reported: list[str] = []
    (tmp_path / "out").mkdir()
    units = generate(Scope.SYSTEM, tmp_path / "out", dirs=[tmp_path], report=reported.append)
    pod = parse_unit(units["shop-main.service"])
    assert values(pod, "Service", "Type") == ["oneshot"]
    assert values(pod, "Service", "RemainAfterExit") == ["yes"]
    assert values(pod, "Service", "TimeoutStopSec") == ["20"]
    assert any("pod-setup shop" in line for line in values(pod, "Service", "ExecStart"))
    assert any("pod-release shop" in line for line in values(pod, "Service", "ExecStop"))
    assert values(pod, "Unit", "Wants")[-1:] == ["web.service"]  # db: start_with_pod false
    assert "db.service" not in values(pod, "Unit", "Wants")
    for member in ("web.service", "db.service"):
        unit = parse_unit(units[member])
        assert values(unit, "Unit", "BindsTo") == ["shop-main.service"]
        assert "shop-main.service" in values(unit, "Unit", "After")
    out = tmp_path / "out"
    assert (out / "multi-user.target.wants/shop-main.service").is_symlink()
    assert (out / "shop-pod.service").is_symlink()  # the quadlet name stays an alias
    assert "pod nowhere is not declared" in units["lost.service"]  # a unit failing so
    assert any("lost.container:3:Pod: pod nowhere is not declared" in r for r in reported)


def test_a_member_joins_the_pods_namespaces_in_its_config() -> None:
    from hostctl.runtime.spec import Extras, Identity, build_config
    from tests.unit.test_runtime_spec import merged

    extras = Extras(joined=(("ipc", "/run/hostctl/pods/p/ipc"), ("uts", "/run/hostctl/pods/p/uts")),
                    shm_source="/run/hostctl/pods/p/shm")
    cfg = build_config(merged(), Identity(0, 0), rootfs="/r", hostname="p", files={},
                       cgroups_path=None, annotations={},
                       network_namespace="/run/netns/hostctl-p-pod", extras=extras)
    namespaces = cfg["linux"]["namespaces"]
    assert {"type": "ipc", "path": "/run/hostctl/pods/p/ipc"} in namespaces
    assert {"type": "uts", "path": "/run/hostctl/pods/p/uts"} in namespaces
    assert {"type": "network", "path": "/run/netns/hostctl-p-pod"} in namespaces
    assert {"type": "pid"} in namespaces and {"type": "mount"} in namespaces
    shm = next(m for m in cfg["mounts"] if m["destination"] == "/dev/shm")
    assert (shm["type"], shm["source"]) == ("bind", "/run/hostctl/pods/p/shm")


def test_a_users_pod_on_a_declared_network_is_refused_when_it_starts(tmp_path: Path) -> None:
    from hostctl.declarations.pod_file import load_pod
    from hostctl.errors import RuntimeFailure
    from hostctl.pod.rootless import check_network

    path = _write(tmp_path, "shop.pod", "[Pod]\nNetwork=appnet.network\n")
    with pytest.raises(RuntimeFailure) as caught:
        check_network(load_pod(path, user=True))
    assert caught.value.where == f"{path}:2:Network"
    assert "cannot join the declared network appnet" in str(caught.value)
    host = _write(tmp_path, "lan.pod", "[Pod]\nNetwork=none\n")
    check_network(load_pod(host, user=True))  # none, host and the default are fine


def test_a_users_pod_record_names_its_holder() -> None:
    from hostctl.pod.holder import PodRecord
    from hostctl.pod.rootless import holder_pid

    fields = dict(name="p", network="bridge", netns="/proc/1/ns/net", ipc="/proc/1/ns/ipc",
                  uts="/proc/1/ns/uts", shm="/s", hosts="/h", resolv_conf="", hostname="p",
                  volumes=(), exit_policy="continue", unit="p-pod.service")
    own = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    record = PodRecord(**fields, holder=f"{os.getpid()}:{own}")
    assert PodRecord.from_json(record.to_json()) == record
    assert holder_pid(record) == os.getpid()
    assert holder_pid(PodRecord(**fields, holder=f"{os.getpid()}:1")) is None  # PID reused
    assert holder_pid(PodRecord(**fields)) is None  # a rootful pod's: no holder


def test_validate_reads_pods_in_both_forms(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "pods").mkdir()
    good = _write(tmp_path / "pods", "shop.yaml", "ports: ['8080:80']\n")
    bad = _write(tmp_path / "pods", "bad.yaml", "ports: ['8080:80']\nnetwork: host\n")
    member = _write(tmp_path, "web.yaml", "image: docker.io/library/a:1\npod: shop\n"
                    "hostname: x\n")
    hostctl = str(Path(sys.executable).parent / "hostctl")
    done = subprocess.run([hostctl, "validate", str(good), str(bad), str(member)],
                          capture_output=True, text=True)
    assert f"{good}: ok" in done.stdout and "Traceback" not in done.stderr
    assert f"{bad}:1:ports: ports are published on a pod with network host" in done.stderr
    assert f"{member}:3:hostname: a member of pod shop cannot set hostname" in done.stderr


def test_a_users_pod_unit_hands_its_holder_to_systemd(tmp_path: Path) -> None:
    from hostctl.paths import Scope
    from hostctl.units.generator import generate

    _write(tmp_path, "shop.pod", "[Pod]\n")
    lan = _write(tmp_path, "lan.pod", "[Pod]\nNetwork=appnet.network\n")
    reported: list[str] = []
    units = generate(Scope.USER, None, dirs=[tmp_path], report=reported.append)
    assert reported == [f"{lan}:2:Network: a user's pod cannot join the declared network "
                        "appnet (hint: leave the pod on the default network (pasta), or use "
                        "none or host)"]
    service = units["shop-pod.service"].split("[Service]")[1]
    assert "Type=notify\nNotifyAccess=all\n" in service
    assert "pod-setup --user shop" in service and "ExecStopPost=" in service
    assert "RemainAfterExit" not in service


def test_a_host_network_pods_setup_record_holds_until_its_file_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record a full pod-setup writes (hostctl.pod.holder) is one the next setup
    (hostctl.pod.quick) takes, as long as the pod's file is unchanged."""
    from hostctl.declarations.dirs import ENV_PATH
    from hostctl.launcher import record as records
    from hostctl.paths import Scope, for_scope
    from hostctl.pod import holder, quick

    for variable, sub in (("HOSTCTL_RUN_DIR", "run"), ("HOSTCTL_CONFIG_DIR", "etc"),
                          ("HOSTCTL_STATE_DIR", "state")):
        monkeypatch.setenv(variable, str(tmp_path / sub))
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "decl"))
    (tmp_path / "decl").mkdir()
    source = _write(tmp_path / "decl", "lan.pod", "[Pod]\nNetwork=host\nShmSize=4m\n")
    paths = for_scope(Scope.SYSTEM)
    pod = load_pod(source)
    shared = holder.PodRecord(name="lan", network="host", netns=None, ipc="/i", uts="/u",
                              shm="/s", hosts=str(tmp_path / "run/hosts"), resolv_conf="",
                              hostname="lan", volumes=(), exit_policy="stop",
                              unit="lan-pod.service")
    holder._save_setup(pod, paths, shared, "127.0.0.1\tlan\n")
    saved = records.load(quick.record_path("lan"))
    assert saved is not None and records.is_current(saved, quick._version())
    source.write_text("[Pod]\nNetwork=host\nShmSize=8m\n")
    assert not records.is_current(saved, quick._version())


def test_pod_inspect_shows_the_running_pods_addresses(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`hostctl pod inspect`'s addresses: the pod's attachments (NAME-pod, on each of its
    networks), IPv4 first; none when it is not attached."""
    from hostctl import network
    from hostctl.network.cni import Attachment
    from hostctl.paths import Scope, for_scope

    monkeypatch.setenv("HOSTCTL_RUN_DIR", str(tmp_path))
    paths = for_scope(Scope.SYSTEM)
    assert network.addresses(paths, "api-pod") == []
    cache = network.state_dir(paths) / "cni"
    cache.mkdir(parents=True)
    result = {"ips": [{"address": "fd00:94::50/64"}, {"address": "10.94.0.50/24"}]}
    (cache / "api-pod.json").write_text(
        Attachment("api-pod", "backend", "/run/netns/x", {}, result).to_json())
    (cache / "api-pod+eth1.json").write_text(
        Attachment("api-pod", "other", "/run/netns/x", {},
                   {"ips": [{"address": "10.95.0.9/24"}]}, ifname="eth1").to_json())
    (cache / "api-pod2.json").write_text("{}")  # another pod's (broken) file is not read
    assert network.addresses(paths, "api-pod") == ["10.94.0.50", "10.95.0.9", "fd00:94::50"]
