"""Reading podman quadlet `.volume` files: named volumes made ahead by a oneshot unit.

`NAME.volume` among the container declarations declares the named volume NAME (podman
calls it systemd-NAME; hostctl, like its networks, names it after the file). The
generator writes `NAME-volume.service` (Type=oneshot, RemainAfterExit=yes), which runs
`hostctl volume-setup NAME` (hostctl.volumes): the volume's directory and its settings for
the launcher, and a mount of Device= when there is one (unmounted by volume-release at
stop). A container naming it (`Volume=NAME.volume:/path`, `Mount=type=volume,
source=NAME.volume,...`) gets Requires= and After= on that unit, as does every container
naming the volume NAME. The YAML form is `volumes/NAME.yaml` in the scope's config
directory (/etc/hostctl/volumes, ~/.config/hostctl/volumes), with the YAML keys of
YAML_KEYS; a .volume file wins over it. KEY_TABLE says how each key maps (it feeds
docs/declarations.md); other keys and sections are refused with FILE:LINE:KEY.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hostctl.declarations.checks import Invalid, check_name, suggest
from hostctl.declarations.resource_keys import VOLUME_KEYS
from hostctl.declarations.scan import typed_files
from hostctl.declarations.unitfile import SyntaxProblem, parse_unit_text, unquote
from hostctl.declarations.values import parse_bool
from hostctl.errors import DeclarationError

SUFFIX = ".volume"
UNIT_SUFFIX = "-volume.service"
KEY_TABLE: dict[str, str] = {
    "Copy": "true (the default): on first use, the image's content at the mount point is "
    "copied into the empty volume",
    "Device": "a device, directory (with Type=bind) or tmpfs mounted as the volume by its "
    "unit (rootful only)",
    "Type": "the file system type of Device= (mount -t; bind: a bind mount)",
    "Options": "mount options of Device= (mount -o)",
    "User": "with Device=: uid= mount option; without: the volume directory's owner (a "
    "name or uid of the host; rootful only)",
    "Group": "with Device=: gid= mount option; without: the volume directory's group",
    "UID": "the owner of the volume directory (or the mount's root)",
    "GID": "the group of the volume directory (or the mount's root)",
    "Driver": "local only (a directory, or the mount of Device=); the image driver is not "
    "supported",
    "VolumeName": "only the file's own name: hostctl names a volume after its file "
    "(podman: systemd-NAME)",
}
# YAML key -> the [Volume] key it stands for.
YAML_KEYS = {k.key: k.quadlet for k in VOLUME_KEYS}
_NOT_HERE = {
    "Image": "hostctl has no image-backed volumes",
    "Label": "hostctl keeps no labels on volumes",
    "ServiceName": "the unit is NAME-volume.service",
    "PodmanArgs": "hostctl does not run podman",
    "GlobalArgs": "hostctl does not run podman",
    "ContainersConfModule": "hostctl does not read containers.conf modules",
}


@dataclass(frozen=True)
class VolumeDecl:
    """A .volume file: the volume NAME and how to make it."""

    name: str
    source: Path
    device: str | None = None
    fs_type: str | None = None
    options: str | None = None  # mount -o, with uid=/gid= of User=/Group= for a Device=
    uid: int | None = None  # the volume directory's owner
    gid: int | None = None
    copy: bool = True

    @property
    def unit_name(self) -> str:
        return f"{self.name}{UNIT_SUFFIX}"

    def spec(self) -> str:
        """What the launcher reads (VOLUME_ROOT/NAME/volume.json), as JSON."""
        return json.dumps({"uid": self.uid, "gid": self.gid, "copy": self.copy,
                           "device": self.device is not None})


def volume_files(dirs: list[Path], yaml_dir: Path | None = None) -> dict[str, Path]:
    """name -> its .volume file: the first of DIRS holding one (masked: /dev/null), else
    YAML_DIR/NAME.yaml (the YAML form)."""
    return typed_files(dirs, SUFFIX, yaml_dir)


def volumes_dir(config: Path) -> Path:
    """Where the YAML form lives, under the scope's config directory."""
    return config / "volumes"


def _yaml_entries(path: Path, text: str) -> list[tuple[str, str, str, int]]:
    """(section, key, value, line) of a YAML volume, in the .volume file's terms."""
    import yaml
    from yaml.nodes import MappingNode, ScalarNode

    from hostctl.declarations.yaml_nodes import NULL

    try:
        top = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise DeclarationError(f"invalid YAML: {err.problem}", where=f"{path}{line}",
                               hint="check the YAML syntax") from None
    if top is None or (isinstance(top, ScalarNode) and top.tag == NULL):
        return []
    if not isinstance(top, MappingNode):
        raise DeclarationError("the top level must be a mapping of settings", where=str(path),
                               hint=f"allowed keys: {', '.join(YAML_KEYS)}")
    entries = []
    for key_node, value_node in top.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key not in YAML_KEYS:
            raise DeclarationError(f"unknown key {key!r}", where=f"{path}:{line}:{key}",
                                   hint=f"{suggest(key, YAML_KEYS)}allowed keys: "
                                   f"{', '.join(YAML_KEYS)}")
        if not isinstance(value_node, ScalarNode):
            raise DeclarationError("expected a single value", where=f"{path}:{line}:{key}",
                                   hint=f"e.g. {key}: VALUE")
        entries.append(("Volume", key, str(value_node.value), line))
    return entries


def load_volume(path: Path, *, user: bool = False) -> VolumeDecl:
    """Read and validate the .volume file PATH (a user's with USER)."""
    _check_file_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(f"cannot read: {err}", where=str(path)) from None
    return parse_volume(text, path, user=user)


def parse_volume(text: str, path: Path, *, user: bool = False) -> VolumeDecl:
    """Validate the volume declaration TEXT as if it were PATH (.volume or YAML)."""
    name = _check_file_name(path)
    if path.name.endswith((".yaml", ".yml")):
        name = path.name.rsplit(".", 1)[0]
        rows = [(key, YAML_KEYS[key], value, line)
                for _, key, value, line in _yaml_entries(path, text)]
    else:
        try:
            rows = [(e.key, e.key, unquote(e.value), e.line) for e in parse_unit_text(text)
                    if _section_ok(e.section, e.key, path, e.line)]
        except SyntaxProblem as err:
            raise DeclarationError(err.message, where=f"{path}:{err.line}",
                                   hint=err.hint) from None
    values: dict[str, str] = {}
    where: dict[str, str] = {}
    for written, key, value, line in rows:
        here = f"{path}:{line}:{written}"
        try:
            _check("Volume", key, value, name, user)
        except Invalid as err:
            raise DeclarationError(err.message, where=here, hint=err.hint) from None
        values[key] = value
        where[key] = here
    try:
        return _decl(name, path, values, where)
    except _Late as err:
        raise DeclarationError(err.message, where=where[err.key], hint=err.hint) from None


def _check_file_name(path: Path) -> str:
    """The volume's name, from PATH, if it can name one."""
    name = path.name.removesuffix(SUFFIX).removesuffix(".yaml").removesuffix(".yml")
    try:
        check_name(name)
        if "@" in name:
            raise Invalid(f"{name!r} is a template volume", "hostctl has no volume templates")
    except Invalid as err:
        raise DeclarationError(err.message, where=str(path), hint=err.hint) from None
    return name


class _Late(Invalid):
    def __init__(self, key: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.key = key


def _section_ok(section: str, key: str, path: Path, line: int) -> bool:
    if section != "Volume":
        raise DeclarationError(f"section [{section}] is not supported in a .volume file",
                               where=f"{path}:{line}:{key}",
                               hint="only [Volume] is read; the unit is hostctl's own")
    return True


def _check(section: str, key: str, value: str, name: str, user: bool) -> None:
    if key in _NOT_HERE:
        raise Invalid(f"unsupported key {key!r}", _NOT_HERE[key])
    if key not in KEY_TABLE:
        raise Invalid(f"unsupported key {key!r}",
                      f"{suggest(key, KEY_TABLE)}supported [Volume] keys: "
                      f"{', '.join(KEY_TABLE)}")
    if key == "VolumeName" and value != name:
        raise Invalid(f"the volume would be named {value!r}, not {name!r}",
                      f"hostctl names a volume after its file: name it {value}{SUFFIX} and "
                      "drop VolumeName=")
    if user and key in ("Device", "User", "Group", "UID", "GID"):
        raise Invalid(f"{key}= is not possible for a user's volume",
                      "mounts and owners other than the user need root; declare the volume "
                      "for rootful containers")
    if key == "Copy":
        parse_bool(value)
    if key == "Driver" and value != "local":
        raise Invalid(f"volume driver {value!r} is not supported",
                      "hostctl volumes are directories or mounts (Driver=local)")
    if key in ("Device", "Type", "Options") and (not value or "\n" in value):
        raise Invalid(f"{key}= is empty", f"give {key}=VALUE or drop it")


def _decl(name: str, path: Path, values: dict[str, str], where: dict[str, str]
          ) -> VolumeDecl:
    device = values.get("Device")
    for key in ("Type", "Options"):
        if key in values and device is None:
            raise _Late(key, f"{key}= without Device=", "add Device= (what to mount)")
    if device is not None and device != "tmpfs" and not device.startswith("/"):
        raise _Late("Device", f"{device!r} is not an absolute path or tmpfs",
                    "e.g. Device=/dev/vdb1, or Device=/srv/data with Type=bind")
    user_id = _account(values, "User", "uid", where)
    group_id = _account(values, "Group", "gid", where)
    uid = _account(values, "UID", "uid", where)
    gid = _account(values, "GID", "gid", where)
    options = values.get("Options")
    if device is not None:
        extra = [f"uid={user_id}"] if user_id is not None else []
        extra += [f"gid={group_id}"] if group_id is not None else []
        options = ",".join([*extra, *([options] if options else [])]) or None
    else:
        uid = uid if uid is not None else user_id
        gid = gid if gid is not None else group_id
    copy = parse_bool(values["Copy"]) if "Copy" in values else True
    return VolumeDecl(name, path, device, values.get("Type"), options, uid, gid, copy)


def _account(values: dict[str, str], key: str, kind: str, where: dict[str, str]) -> int | None:
    """KEY's value as a number: a uid/gid, or a name looked up on this host."""
    if key not in values:
        return None
    text = values[key]
    if text.isdigit():
        return int(text)
    import grp
    import pwd

    try:
        return pwd.getpwnam(text).pw_uid if kind == "uid" else grp.getgrnam(text).gr_gid
    except KeyError:
        raise _Late(key, f"no {'user' if kind == 'uid' else 'group'} {text!r} on this host",
                    "give a number or a name from /etc/passwd or /etc/group") from None
