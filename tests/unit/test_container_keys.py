"""The container keys EnvironmentHost, HttpProxy, IP/IP6, LogDriver, Mask/Unmask and
SeccompProfile: read from both forms, and their effect on config.json, the CNI config
and the container's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hostctl.declarations.model import Container
from hostctl.declarations.quadlet_reader import parse_quadlet
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError, RuntimeFailure
from hostctl.images.pull import Image
from hostctl.launcher.config import container_config, host_env
from hostctl.launcher.state import ContainerState
from hostctl.network import NetworkPlan, cni, defs
from hostctl.paths import Paths, Scope
from hostctl.runtime import seccomp_file
from hostctl.runtime.spec import MASKED_PATHS, READONLY_PATHS

SOURCE = Path("/etc/hostctl/containers/app.yaml")
IMAGE = "image: docker.io/library/busybox:1.36\n"


def yaml(text: str) -> Container:
    return parse_yaml(IMAGE + text, SOURCE)


def quadlet(text: str, tmp_path: Path | None = None) -> Container:
    where = (tmp_path or Path("/etc/containers/systemd")) / "app.container"
    return parse_quadlet(f"[Container]\nImage=busybox\n{text}", where)


def config_of(container: Container, tmp_path: Path, *, image_env: tuple[str, ...] = ()
              ) -> dict[str, Any]:
    """config.json as the launcher writes it for CONTAINER (no network, root user)."""
    paths = Paths(Scope.SYSTEM, tmp_path / "state", tmp_path / "run", tmp_path / "etc")
    state = ContainerState(container.name, paths)
    state.rootfs.mkdir(parents=True, exist_ok=True)
    image = Image("docker.io/library/busybox:1.36", "sha256:" + "a" * 64, "sha256:" + "b" * 64,
                  {"config": {"Cmd": ["sh"], "Env": list(image_env)}}, (), ())
    net = NetworkPlan("new", (), "nameserver 192.0.2.53\n", "none")
    return container_config(container, image, state, paths, net, unit_cgroup=None,
                            user_maps=None)


def test_both_forms_read_the_new_keys(tmp_path: Path) -> None:
    from_yaml = yaml("env_host: true\nhttp_proxy: false\nip: 10.90.5.20\nip6: fd00:90:5::20\n"
                     "log_driver: none\nmask: [/proc/sys/dev]\nunmask: [ALL]\n"
                     "seccomp_profile: /etc/app/seccomp.json\n")
    from_quadlet = quadlet("EnvironmentHost=yes\nHttpProxy=false\nIP=10.90.5.20\n"
                           "IP6=fd00:90:5:0::20\nLogDriver=none\nMask=/proc/sys/dev\n"
                           "Unmask=all\nSeccompProfile=seccomp.json\n", tmp_path)
    for c in (from_yaml, from_quadlet):
        assert (c.env_host, c.http_proxy, c.ip, c.ip6) == (
            True, False, "10.90.5.20", "fd00:90:5::20")
        assert (str(c.log_driver), c.mask, c.unmask) == ("none", ("/proc/sys/dev",), ("ALL",))
    assert from_yaml.seccomp_profile == "/etc/app/seccomp.json"
    assert from_quadlet.seccomp_profile == str(tmp_path / "seccomp.json")  # the file's dir


@pytest.mark.parametrize(("text", "key", "words"), [
    ("network: host\nip: 10.0.0.2\n", "ip", "a static address with network: host"),
    ("pod: web\nip6: fd00::2\n", "ip6", "a member of pod web has the pod's address"),
    ("mask: [ALL]\n", "mask", "ALL can only be unmasked"),
    ("mask: [relative]\n", "mask[0]", "not an absolute path"),
    ("seccomp_profile: default\n", "seccomp_profile", "not a seccomp profile"),
    ("groups: [keep-groups]\n", "groups[0]", "keep-groups is not supported"),
    ("log_driver: k8s-file\n", "log_driver", "journald, passthrough, none"),
])
def test_bad_values_name_the_key(text: str, key: str, words: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        yaml(text)
    assert caught.value.where is not None and caught.value.where.endswith(key)
    assert words in str(caught.value)


def test_mask_adds_and_unmask_removes_masked_and_read_only_paths(tmp_path: Path) -> None:
    linux = config_of(yaml("mask: [/proc/sys/dev]\nunmask: [/proc/kcore, /proc/sys]\n"),
                      tmp_path)["linux"]
    assert "/proc/sys/dev" in linux["maskedPaths"] and "/proc/kcore" not in linux["maskedPaths"]
    assert "/proc/acpi" in linux["maskedPaths"]
    assert "/proc/sys" not in linux["readonlyPaths"] and "/proc/bus" in linux["readonlyPaths"]


def test_unmask_all_keeps_only_the_declared_masks(tmp_path: Path) -> None:
    linux = config_of(yaml("mask: [/proc/sys/dev]\nunmask: [ALL]\n"), tmp_path)["linux"]
    assert linux["maskedPaths"] == ["/proc/sys/dev"] and linux["readonlyPaths"] == []
    default = config_of(yaml(""), tmp_path / "2")["linux"]
    assert default["maskedPaths"] == list(MASKED_PATHS)
    assert default["readonlyPaths"] == list(READONLY_PATHS)


def test_seccomp_unconfined_drops_the_filter(tmp_path: Path) -> None:
    assert "seccomp" not in config_of(yaml("seccomp_profile: unconfined\n"), tmp_path)["linux"]
    assert "seccomp" in config_of(yaml(""), tmp_path / "2")["linux"]


def test_a_seccomp_profile_file_replaces_the_default(tmp_path: Path) -> None:
    profile = tmp_path / "app.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "basic"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
             "excludes": {"caps": ["CAP_CHOWN"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
        ]}))
    seccomp = config_of(yaml(f"seccomp_profile: {profile}\n"), tmp_path)["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO" and seccomp["defaultErrnoRet"] == 1
    names = [rule["names"] for rule in seccomp["syscalls"]]
    # root holds CAP_CHOWN and not CAP_SYS_ADMIN: mount and ptrace are left out
    assert names == [["read", "write"], ["clone"]]
    assert seccomp["syscalls"][1]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    assert "comment" not in seccomp["syscalls"][0]
    added = config_of(yaml(f"seccomp_profile: {profile}\ncap_add: [SYS_ADMIN]\n"),
                      tmp_path / "2")["linux"]["seccomp"]
    assert ["mount"] in [rule["names"] for rule in added["syscalls"]]


def test_seccomp_arch_map_picks_this_machines_architectures() -> None:
    data = {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                      "includes": {"arches": ["amd64"]}}]}
    x86 = seccomp_file.convert(data, set(), "x86_64")
    arm = seccomp_file.convert(data, set(), "aarch64")
    assert x86["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert len(x86["syscalls"]) == 1 and arm["syscalls"] == []


@pytest.mark.parametrize(("content", "words"), [
    (None, "No such file"), ("{", "is not JSON"), ("[]", "has no defaultAction"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [1]}', "is malformed"),
])
def test_a_bad_seccomp_profile_fails_the_start_at_its_key(
        tmp_path: Path, content: str | None, words: str) -> None:
    profile = tmp_path / "bad.json"
    if content is not None:
        profile.write_text(content)
    with pytest.raises(RuntimeFailure) as caught:
        config_of(yaml(f"seccomp_profile: {profile}\n"), tmp_path)
    assert words in caught.value.message
    assert caught.value.where == f"{SOURCE}:2:seccomp_profile"


def test_proxy_variables_pass_by_default_and_env_host_passes_everything(
        tmp_path: Path) -> None:
    environ = {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost",
               "LANG": "C.UTF-8", "NOTIFY_SOCKET": "/run/systemd/notify"}
    assert host_env(yaml(""), environ) == [("no_proxy", "localhost"),
                                          ("HTTPS_PROXY", "http://proxy:3128")]
    assert host_env(yaml("http_proxy: false\n"), environ) == []
    assert dict(host_env(yaml("env_host: true\n"), environ)) == {
        "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost", "LANG": "C.UTF-8"}


def test_host_variables_override_the_image_and_yield_to_env(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTCTL_TEST_A", "host")
    monkeypatch.setenv("HOSTCTL_TEST_B", "host")
    monkeypatch.setenv("https_proxy", "http://proxy:3128")
    env = config_of(yaml("env_host: true\nenv: {HOSTCTL_TEST_B: declared}\n"), tmp_path,
                    image_env=("HOSTCTL_TEST_A=image",))["process"]["env"]
    assert {"HOSTCTL_TEST_A=host", "HOSTCTL_TEST_B=declared",
            "https_proxy=http://proxy:3128"} <= set(env)
    plain = config_of(yaml(""), tmp_path / "2")["process"]["env"]
    assert "https_proxy=http://proxy:3128" in plain
    assert not any(e.startswith("HOSTCTL_TEST_") for e in plain)


def test_static_addresses_are_requested_from_host_local(tmp_path: Path) -> None:
    net = defs.parse("subnet: 10.91.0.0/24\nipv6_subnet: fd00:91::/64\n",
                     Path("/etc/hostctl/networks/back.yaml"), "back")
    c = yaml("network: back\nip: 10.91.0.7\nip6: fd00:91::7\n")
    config = cni.conflist(net, tmp_path, cni.requested_ips(c, net))
    assert config["plugins"][0]["args"] == {"cni": {"ips": ["10.91.0.7", "fd00:91::7"]}}
    assert "args" not in cni.conflist(net, tmp_path, cni.requested_ips(yaml(""), net))["plugins"][0]


@pytest.mark.parametrize(("text", "key", "words"), [
    ("ip: 10.92.0.7\n", "ip", "not a free address of network back (10.91.0.0/24)"),
    ("ip: 10.91.0.1\n", "ip", "other than its gateway 10.91.0.1"),
    ("ip6: fd00:91::7\n", "ip6", "network back has no IPv6 subnet"),
])
def test_static_addresses_outside_the_network_are_refused(text: str, key: str,
                                                          words: str) -> None:
    net = defs.parse("subnet: 10.91.0.0/24\n", Path("/etc/hostctl/networks/back.yaml"), "back")
    with pytest.raises(RuntimeFailure) as caught:
        cni.requested_ips(yaml("network: back\n" + text), net)
    assert words in str(caught.value) and caught.value.where == f"{SOURCE}:3:{key}"


def test_an_anonymous_volume_is_new_for_each_run_with_the_images_content(
        tmp_path: Path) -> None:
    """volumes: [DST] (quadlet Volume=DST): made under this run's scratch directory, which
    every start and stop removes, with what the image has at DST."""
    c = yaml('volumes: ["/cache", "/empty"]\n')
    assert [v.kind for v in c.volumes] == ["anonymous", "anonymous"]
    mounted = quadlet("Mount=type=volume,destination=/cache\nVolume=/empty\n")
    assert mounted.volumes == c.volumes
    state = ContainerState(c.name, Paths(Scope.SYSTEM, tmp_path / "state", tmp_path / "run",
                                         tmp_path / "etc"))
    (state.rootfs / "cache").mkdir(parents=True)
    (state.rootfs / "cache" / "seed").write_text("from the image\n")
    mounts = {m["destination"]: m for m in config_of(c, tmp_path)["mounts"]}
    cache, empty = Path(mounts["/cache"]["source"]), Path(mounts["/empty"]["source"])
    assert cache.is_relative_to(state.scratch) and empty.is_relative_to(state.scratch)
    assert (cache / "seed").read_text() == "from the image\n"
    assert list(empty.iterdir()) == [] and cache != empty
    assert "rbind" in mounts["/cache"]["options"]


def test_log_driver_none_hands_the_container_dev_null_but_keeps_the_launchers_messages(
        ) -> None:
    """What runc hands on (this process's stdout and stderr) is /dev/null; the
    launcher's own say() still reaches the journal's stream."""
    script = (
        "import os, sys\n"
        "from hostctl.launcher.handoff import drop_container_output, say\n"
        "drop_container_output()\n"
        "pid = os.posix_spawn('/bin/sh', ['sh', '-c', 'echo container-out; "
        "echo container-err >&2'], dict(os.environ))\n"
        "os.waitpid(pid, 0)\n"
        "say('launcher message')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[2],
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.stdout == "" and done.stderr == "hostctl: launcher message\n"


def test_reload_cmd_runs_the_command_in_the_container_on_reload() -> None:
    from hostctl.units.render import render_unit

    c = yaml('reload_cmd: ["nginx", "-s", "reload"]\n')
    system = render_unit(c, hostctl_bin="/usr/bin/hostctl", scope=Scope.SYSTEM)
    assert "ExecReload=/usr/bin/hostctl exec app nginx -s reload\n" in system
    user = render_unit(c, hostctl_bin="/usr/bin/hostctl", scope=Scope.USER)
    assert "ExecReload=/usr/bin/hostctl exec --user app nginx -s reload\n" in user
    assert "ExecReload" not in render_unit(yaml(""), hostctl_bin="/usr/bin/hostctl",
                                           scope=Scope.SYSTEM)
    with pytest.raises(DeclarationError, match="a reload command and a reload signal"):
        yaml('reload_cmd: [x]\nreload_signal: HUP\n')


def test_a_static_address_on_a_users_pasta_bridge_is_refused_at_its_key(
        tmp_path: Path) -> None:
    from hostctl import network

    paths = Paths(Scope.USER, tmp_path / "state", tmp_path / "run", tmp_path / "etc")
    with pytest.raises(RuntimeFailure) as caught:
        network.plan(yaml("ip: 10.0.2.100\n"), paths)
    assert "pasta" in caught.value.message and caught.value.where == f"{SOURCE}:2:ip"
