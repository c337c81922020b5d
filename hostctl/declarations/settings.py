"""Every declaration setting, described once.

The YAML reader validates against this table; the docs, the quadlet-file reader and the
Ansible argument_spec are generated from it. A new setting is a new row here plus a field
of the same name on `Container` (tests check the two agree); a new *kind* of value also
needs a converter in yaml_reader and, when it has rules, a check in checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """The shape of a setting's value, which decides how it is read and checked."""

    IMAGE = "image"  # an image reference, checked by hostctl.images.reference
    ARGV = "argv"  # a list of strings, or one string split like a shell would
    ENV = "env"  # NAME -> string (a map, or a list of NAME=VALUE)
    ABSPATH = "abspath"  # an absolute path inside the container
    USER = "user"  # name or uid, optionally :group or :gid
    SECONDS = "seconds"  # whole seconds, an integer >= 1
    CHOICE = "choice"  # one of Setting.choices
    DIRECTIVES = "directives"  # raw systemd directives for one unit section


# How each kind is spelled in the docs and in an Ansible argument_spec.
KIND_DOC_TYPE: Mapping[Kind, str] = {
    Kind.IMAGE: "str",
    Kind.ARGV: "list[str] | str",
    Kind.ENV: "map[str, str]",
    Kind.ABSPATH: "str (absolute path)",
    Kind.USER: "str (user[:group] or uid[:gid])",
    Kind.SECONDS: "int (seconds)",
    Kind.CHOICE: "str (choice)",
    Kind.DIRECTIVES: "map[str, str | list[str]]",
}
KIND_ANSIBLE_TYPE: Mapping[Kind, str] = {
    Kind.IMAGE: "str",
    Kind.ARGV: "raw",
    Kind.ENV: "raw",
    Kind.ABSPATH: "path",
    Kind.USER: "str",
    Kind.SECONDS: "int",
    Kind.CHOICE: "str",
    Kind.DIRECTIVES: "dict",
}


class Restart(StrEnum):
    """systemd's Restart= values, which the unit gets unchanged."""

    NO = "no"
    ON_SUCCESS = "on-success"
    ON_FAILURE = "on-failure"
    ON_ABNORMAL = "on-abnormal"
    ON_WATCHDOG = "on-watchdog"
    ON_ABORT = "on-abort"
    ALWAYS = "always"


@dataclass(frozen=True)
class Setting:
    """One key of a declaration: its type, default, help and where it ends up."""

    key: str  # snake_case, as written in YAML and in Ansible
    kind: Kind
    help: str
    maps_to: str  # the unit directive or OCI config field it becomes
    quadlet: str | None = None  # the quadlet [Container] key with the same meaning
    default: Any = None
    required: bool = False
    choices: type[StrEnum] | None = None  # for CHOICE: the allowed values
    section: str | None = None  # for DIRECTIVES: the unit section they go to
    example: str | None = None

    @property
    def doc_type(self) -> str:
        if self.choices is not None:
            return " | ".join(self.choices)
        return KIND_DOC_TYPE[self.kind]


SETTINGS: tuple[Setting, ...] = (
    Setting(
        key="image",
        kind=Kind.IMAGE,
        required=True,
        help="The image to run; pulled from its registry when it is not in the store.",
        maps_to="OCI root filesystem and process defaults from the image config",
        quadlet="Image",
        example="docker.io/library/nginx:1.27",
    ),
    Setting(
        key="command",
        kind=Kind.ARGV,
        help="Arguments replacing the image's Cmd; a string is split like a shell would.",
        maps_to="OCI process.args (after the entrypoint)",
        quadlet="Exec",
        example='["nginx", "-g", "daemon off;"]',
    ),
    Setting(
        key="entrypoint",
        kind=Kind.ARGV,
        help="Replaces the image's Entrypoint (and drops its Cmd unless `command` is set); "
        "[] clears it.",
        maps_to="OCI process.args (first)",
        quadlet="Entrypoint",
        example='["/docker-entrypoint.sh"]',
    ),
    Setting(
        key="env",
        kind=Kind.ENV,
        default=(),
        help="Environment variables added to the image's; numbers and booleans are written "
        "as in the file.",
        maps_to="OCI process.env",
        quadlet="Environment",
        example="{TZ: UTC, WORKERS: 4}",
    ),
    Setting(
        key="workdir",
        kind=Kind.ABSPATH,
        help="Working directory of the container's process (default: the image's).",
        maps_to="OCI process.cwd",
        quadlet="WorkingDir",
        example="/srv/app",
    ),
    Setting(
        key="user",
        kind=Kind.USER,
        help="User to run as: a name or uid from the image, optionally :group or :gid "
        "(default: the image's User, else root).",
        maps_to="OCI process.user",
        quadlet="User",
        example="1000:1000",
    ),
    Setting(
        key="stop_timeout",
        kind=Kind.SECONDS,
        default=10,
        help="Seconds between SIGTERM and SIGKILL when the service stops.",
        maps_to="unit [Service] TimeoutStopSec=",
        quadlet="StopTimeout",
        example="30",
    ),
    Setting(
        key="restart",
        kind=Kind.CHOICE,
        default=Restart.NO,
        choices=Restart,
        help="When systemd restarts the container after it exits.",
        maps_to="unit [Service] Restart=",
        example="on-failure",
    ),
    Setting(
        key="unit",
        kind=Kind.DIRECTIVES,
        default=(),
        section="Unit",
        help="Extra [Unit] directives, as systemd syntax (specifiers like %n expand).",
        maps_to="unit [Unit]",
        example="{Requires: postgres.service, After: postgres.service}",
    ),
    Setting(
        key="service",
        kind=Kind.DIRECTIVES,
        default=(),
        section="Service",
        help="Extra [Service] directives, as systemd syntax (MemoryMax=, CPUQuota=, ...).",
        maps_to="unit [Service]",
        example="{MemoryMax: 512M}",
    ),
    Setting(
        key="install",
        kind=Kind.DIRECTIVES,
        default=(),
        section="Install",
        help="[Install] directives (WantedBy=, RequiredBy=, UpheldBy=, Alias=); the "
        "generator creates the links itself, as generated units cannot be enabled.",
        maps_to="unit [Install] and the generator's .wants/.requires/.upholds links",
        example="{WantedBy: multi-user.target}",
    ),
)

BY_KEY: Mapping[str, Setting] = {setting.key: setting for setting in SETTINGS}

# Directives hostctl's unit sets itself and that a raw section must not change: the
# launcher depends on them, or a setting says the same thing. Section -> name -> hint.
RESERVED_DIRECTIVES: Mapping[str, Mapping[str, str]] = {
    "Service": {
        "ExecStart": "the unit runs `hostctl launch`; set `command:` or `entrypoint:`",
        "Type": "hostctl's launcher needs Type=notify",
        "NotifyAccess": "hostctl's launcher needs NotifyAccess=all",
        "KillMode": "hostctl needs KillMode=mixed so the container's init gets SIGTERM",
        "Delegate": "hostctl needs Delegate=yes to place the container in a sub-cgroup",
        "RemainAfterExit": "the container's init is the service's main process",
        "PIDFile": "the launcher reports the container's PID to systemd itself",
        "Restart": "use the `restart:` setting",
        "TimeoutStopSec": "use the `stop_timeout:` setting",
        "User": "use the `user:` setting: the launcher itself must run as the unit's owner",
        "Group": "use the `user:` setting (user:group)",
        "DynamicUser": "use the `user:` setting",
    },
}

# The only [Install] directives a generated unit can honour (as links the generator makes).
INSTALL_DIRECTIVES: Mapping[str, str] = {
    "WantedBy": "wants",
    "RequiredBy": "requires",
    "UpheldBy": "upholds",
    "Alias": "",
}

# key -> default; the model's field defaults come from here.
DEFAULTS: Mapping[str, Any] = {setting.key: setting.default for setting in SETTINGS}
