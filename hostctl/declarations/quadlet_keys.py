"""The [Container] keys of podman's manual that have no setting in hostctl.

Some are accepted with the one value that means what hostctl always does
(SAME_AS_DEFAULT); the others are refused with the reason (REFUSED), which
docs/declarations.md lists. PodmanArgs= names, for each podman option it holds, the
quadlet key that says the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping

from hostctl.declarations.checks import Invalid
from hostctl.declarations.unitfile import split_words
from hostctl.declarations.values import parse_bool

_USERNS = (
    "a rootful container shares the host's user namespace and a user's container the "
    "user's (its uid as root, its /etc/subuid range after it), as UserNS=host; another "
    "mapping would need the image's files owned by other ids, which hostctl does not do"
)
_SELINUX = "hostctl sets no SELinux labels (as SecurityLabelDisable=true)"
_NO_PODMAN = "hostctl does not run podman"

# Key -> (the value that means hostctl's own behaviour, why).
SAME_AS_DEFAULT: Mapping[str, tuple[str, str]] = {
    "CgroupsMode": ("split", "the container runs in a sub-cgroup of its unit's cgroup "
                    "(podman's split, quadlet's default); no-conmon, enabled and disabled "
                    "have no meaning without conmon"),
    "UserNS": ("host", _USERNS),
    "SecurityLabelDisable": ("true", _SELINUX),
    "AppArmor": ("unconfined", "hostctl applies no AppArmor profile"),
    "ContainerName": ("", "hostctl names a container after its file (and `hostctl ps`, "
                      "runc, the network's names and the unit use that name)"),
}

# Key -> why hostctl refuses it (and what to write instead).
REFUSED: Mapping[str, str] = {
    "PodmanArgs": f"{_NO_PODMAN}: write the quadlet keys of its options instead",
    "GlobalArgs": f"{_NO_PODMAN}: its global options have no meaning here",
    "ContainersConfModule": "hostctl does not read containers.conf modules",
    "UIDMap": _USERNS,
    "GIDMap": _USERNS,
    "SubUIDMap": _USERNS,
    "SubGIDMap": _USERNS,
    "RemapUsers": _USERNS,
    "RemapUid": _USERNS,
    "RemapGid": _USERNS,
    "RemapUidSize": _USERNS,
    "SecurityLabelType": _SELINUX,
    "SecurityLabelFileType": _SELINUX,
    "SecurityLabelLevel": _SELINUX,
    "SecurityLabelNested": _SELINUX,
    "Rootfs": "hostctl runs images from its store: build one (`hostctl build`, Image=NAME"
    ".build) from the directory",
    "LogOpt": "the output goes to the journal, whose sizes and rotation are journald's "
    "(journald.conf)",
    "HealthLogDestination": "the checks' results are in `hostctl healthcheck`'s state and "
    "their output in the journal of NAME-healthcheck.service",
    "HealthMaxLogCount": "the checks' output is in the journal of NAME-healthcheck.service",
    "HealthMaxLogSize": "the checks' output is in the journal of NAME-healthcheck.service",
    "ExposeHostPort": "podman only records it (nothing is published without -P): "
    "publish with PublishPort=",
    "Retry": "the launcher pulls once per start: pull ahead with NAME.image (Retry=, "
    "RetryDelay=) and Image=NAME.image",
    "RetryDelay": "the launcher pulls once per start: pull ahead with NAME.image (Retry=, "
    "RetryDelay=) and Image=NAME.image",
}

# podman run options and the quadlet key that says the same (podman's manual).
PODMAN_OPTIONS: Mapping[str, str] = {
    "--cap-add": "AddCapability", "--device": "AddDevice", "--add-host": "AddHost",
    "--annotation": "Annotation", "--cgroups": "CgroupsMode", "--name": "ContainerName",
    "--dns": "DNS", "--dns-option": "DNSOption", "--dns-search": "DNSSearch",
    "--cap-drop": "DropCapability", "--entrypoint": "Entrypoint", "--env": "Environment",
    "-e": "Environment", "--env-file": "EnvironmentFile", "--env-host": "EnvironmentHost",
    "--group-add": "GroupAdd", "--health-cmd": "HealthCmd",
    "--health-interval": "HealthInterval", "--health-on-failure": "HealthOnFailure",
    "--health-retries": "HealthRetries", "--health-start-period": "HealthStartPeriod",
    "--health-startup-cmd": "HealthStartupCmd", "--health-timeout": "HealthTimeout",
    "--hostname": "HostName", "-h": "HostName", "--http-proxy": "HttpProxy", "--ip": "IP",
    "--ip6": "IP6", "--label": "Label", "-l": "Label", "--log-driver": "LogDriver",
    "--memory": "Memory", "-m": "Memory", "--mount": "Mount", "--network": "Network",
    "--net": "Network", "--sdnotify": "Notify", "--pids-limit": "PidsLimit",
    "--publish": "PublishPort", "-p": "PublishPort", "--pull": "Pull",
    "--read-only": "ReadOnly", "--read-only-tmpfs": "ReadOnlyTmpfs", "--init": "RunInit",
    "--secret": "Secret", "--shm-size": "ShmSize", "--stop-signal": "StopSignal",
    "--stop-timeout": "StopTimeout", "--sysctl": "Sysctl", "--tz": "Timezone",
    "--tmpfs": "Tmpfs", "--ulimit": "Ulimit", "--user": "User", "-u": "User",
    "--userns": "UserNS", "--volume": "Volume", "-v": "Volume", "--workdir": "WorkingDir",
    "-w": "WorkingDir", "--security-opt": "Mask=, Unmask=, SeccompProfile=, "
    "NoNewPrivileges", "--cpus": "hostctl's `cpus:` (or [Service] CPUQuota=)",
}


def check_default(key: str, value: str, name: str) -> None:
    """Accept KEY=VALUE when it says what hostctl does anyway; else refuse it."""
    wanted, why = SAME_AS_DEFAULT[key]
    if key == "ContainerName":
        if value != name:
            raise Invalid(f"ContainerName={value!r} differs from the file's name {name!r}",
                          f"{why}: rename the file to {value}.container, or drop the key")
        return
    if key == "SecurityLabelDisable":
        try:
            same = parse_bool(value)
        except Invalid:
            same = False
    else:
        same = value.split(":")[0] == wanted and (key != "UserNS" or value == wanted)
    if not same:
        raise Invalid(f"{key}={value} is not supported", f"only {key}={wanted}: {why}")


def refusal(key: str, value: str) -> Invalid:
    """Why KEY (of REFUSED, or PodmanArgs) is refused."""
    if key == "PodmanArgs":
        return _podman_args(value)
    return Invalid(f"unsupported key {key!r}", REFUSED[key])


def _podman_args(value: str) -> Invalid:
    known, unknown = [], []
    for word in split_words(value):
        if not word.startswith("-"):
            continue
        option = word.split("=", 1)[0]
        if option in PODMAN_OPTIONS:
            known.append(f"{option}: {PODMAN_OPTIONS[option]}=")
        else:
            unknown.append(option)
    parts = [f"{_NO_PODMAN}; write the quadlet keys instead"]
    if known:
        parts.append("; ".join(known))
    if unknown:
        parts.append(f"no key for {', '.join(unknown)}")
    return Invalid("unsupported key 'PodmanArgs'", ": ".join(parts[:2]) + (
        f" ({parts[2]})" if len(parts) > 2 else ""))
