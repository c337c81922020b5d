"""Reading podman quadlet `.container` files onto the same model as YAML declarations.

The [Container] keys that have a setting (settings.Setting.quadlet) map onto it, plus
Mount= (type=bind|volume|tmpfs), ReadOnlyTmpfs= and VolatileTmp=; [Unit], [Service]
and [Install] pass through like the `unit:`, `service:` and `install:` settings. Any
other key is an error naming FILE:LINE:KEY and the keys that are supported. Values of
[Container] keys may use the specifiers %h, %t, %u, %U and %% (expanded when read, as
systemd would in podman's command line), and in a template's instance %i, %I, %p and %P;
relative host paths are taken from the file's directory, as quadlet does. Drop-ins
(hostctl.declarations.search.dropins_for) are appended in order.

What podman's generator does beyond the keys is mapped too: [Quadlet]
DefaultDependencies=, [Install] DefaultInstance= (templates), [Unit] dependencies written
NAME.container (NAME.service), [Service] Type=oneshot, Secret=...,type=env, and the other
quadlet files a container names: Network=NAME.network, Volume=NAME.volume:...,
Mount=...source=NAME.volume, Image=NAME.image and Image=NAME.build (the last two read
beside this file; see volume_file, image_file, build_file and hostctl.network.quadlet).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hostctl.declarations import (
    checks,
    quadlet_keys,
    quadlet_values,
    values,
    values_runtime,
)
from hostctl.declarations.checks import Invalid
from hostctl.declarations.model import Container, Tmpfs
from hostctl.declarations.settings import BY_KEY, SETTINGS, Kind, Setting
from hostctl.declarations.unitfile import (
    Entry,
    SyntaxProblem,
    parse_unit_text,
    split_words,
    unquote,
)
from hostctl.errors import DeclarationError, raise_all

SUFFIX = ".container"
BY_QUADLET: dict[str, Setting] = {s.quadlet: s for s in SETTINGS if s.quadlet}
EXTRA_KEYS = ("Mount", "ReadOnlyTmpfs", "VolatileTmp")
QUADLET_KEYS = {"DefaultDependencies": "default_dependencies"}
# [Unit] directives whose values are unit names: NAME.container there means the unit
# generated from NAME.container, NAME.service (quadlet's translation).
_DEPENDENCY_DIRECTIVES = frozenset({
    "Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Upholds", "Conflicts",
    "Before", "After", "OnFailure", "OnSuccess", "PropagatesReloadTo",
    "ReloadPropagatedFrom", "PropagatesStopTo", "StopPropagatedFrom", "JoinsNamespaceOf",
})
SUPPORTED = ", ".join(sorted([*BY_QUADLET, *EXTRA_KEYS]))
PASS_THROUGH = {"Unit": "unit", "Service": "service", "Install": "install"}
_READ_ONLY_TMPFS = ("/tmp", "/var/tmp", "/run")
# [Service] directives of a quadlet file that hostctl has a setting for.
_SERVICE_SETTINGS = {
    "Restart": next(s for s in SETTINGS if s.key == "restart"),
    "RestartSec": next(s for s in SETTINGS if s.key == "restart_sec"),
}
_UNIT_REFS = (".network", ".volume", ".pod", ".image", ".build", ".kube", ".container")
_SPLIT_KINDS = (Kind.CAPS, Kind.GROUPS, Kind.ADDRESSES, Kind.DOMAINS, Kind.DNS_OPTIONS)
_PAIR_KINDS = {
    Kind.ENV: checks.check_env_name,
    Kind.LABELS: values.parse_label_name,
    Kind.SYSCTLS: values.parse_sysctl_name,
}
_ITEM_PARSERS: dict[Kind, Callable[[str], Any]] = {
    Kind.ABSPATHS: values.parse_host_path,
    Kind.CAPS: values.parse_capability,
    Kind.GROUPS: values_runtime.parse_supplementary_group,
    Kind.VOLUMES: values.parse_volume,
    Kind.TMPFS: values.parse_tmpfs,
    Kind.DEVICES: values.parse_device,
    Kind.ULIMITS: values.parse_ulimit,
    Kind.PORTS: values.parse_port,
    Kind.ADDRESSES: values.parse_address,
    Kind.DOMAINS: values.parse_domain,
    Kind.DNS_OPTIONS: values.parse_dns_option,
    Kind.NETWORKS: values.parse_joined_network,
    Kind.HOSTS: values.parse_host_entry,
}
_SCALAR_PARSERS: dict[Kind, Callable[[str], Any]] = {
    Kind.IMAGE: checks.check_image,
    Kind.ABSPATH: checks.check_abspath,
    Kind.USER: checks.check_user,
    Kind.GROUP: values.parse_group,
    Kind.HOSTNAME: values.parse_hostname,
    Kind.SERVICE_NAME: values.parse_service_name,
    Kind.SECONDS: lambda t: checks.check_seconds(values.parse_int(t, 1, "seconds")),
    Kind.COUNT: lambda t: values.parse_int(t, 1),
    Kind.DELAY: lambda t: values.parse_int(t, 0, "seconds"),
    Kind.SIZE: values.parse_size,
    Kind.BOOL: values.parse_bool,
    Kind.SIGNAL: values.parse_signal,
    Kind.TIMEZONE: values.parse_timezone,
    Kind.NETWORK: values.parse_network,
    Kind.DURATION: values.parse_duration,
    Kind.NOTIFY: values.parse_notify,
    Kind.POD: values.parse_pod,
    Kind.IPV4: values_runtime.parse_ipv4,
    Kind.IPV6: values_runtime.parse_ipv6,
    Kind.SECCOMP: values_runtime.parse_seccomp,
}


def load_quadlet(path: Path, name: str | None = None, dropins: Sequence[Path] = ()) -> Container:
    """Read and validate the .container file PATH and its DROPINS (applied in order)."""
    name = name if name is not None else path.name.removesuffix(SUFFIX)
    reader = _Reader(path, name)
    for file in (path, *dropins):
        reader.read_file(file)
    return reader.container()


def parse_quadlet(text: str, source: Path, name: str | None = None) -> Container:
    """Validate the .container TEXT, which came from SOURCE (used in errors)."""
    reader = _Reader(source, name if name is not None else source.name.removesuffix(SUFFIX))
    reader.read_text(text, source)
    return reader.container()


class _Reader:
    def __init__(self, source: Path, name: str) -> None:
        try:
            checks.check_name(name)
        except Invalid as err:
            raise DeclarationError(err.message, where=str(source), hint=err.hint) from None
        self.source, self.name = source, name
        prefix, instance, templated = checks.template_parts(name)
        if templated and not instance:
            raise DeclarationError(
                f"{name!r} is a template: it declares the units {prefix}@INSTANCE",
                where=str(source),
                hint=f"load an instance, e.g. {prefix}@1",
            )
        # Specifiers of the unit the file declares, expanded when read (%i and %I: the
        # instance; %p and %P: the prefix, the name before '@').
        self.specifiers = {"i": instance, "I": instance, "p": prefix, "P": prefix}
        self.default_instance: str | None = None
        self.volatile_tmp = False
        self.refs: list[tuple[str, str, str]] = []  # (kind, name, FILE:LINE:KEY)
        self.found: dict[str, Any] = {}
        self.lines: dict[str, str] = {}  # setting key -> FILE:LINE:Key of its last entry
        self.locations: dict[str, int] = {}
        self.sections: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self.problems: list[DeclarationError] = []  # every bad entry, raised by container()
        self.failed: set[str] = set()  # keys of the entries that had a problem

    def read_file(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DeclarationError(f"not UTF-8 text (byte {err.start})", where=str(path)) from None
        except OSError as err:
            raise DeclarationError(f"cannot read: {err.strerror}", where=str(path)) from None
        self.read_text(text, path)

    def read_text(self, text: str, path: Path) -> None:
        try:
            entries = parse_unit_text(text)
        except SyntaxProblem as err:
            where = f"{path}:{err.line}"
            self.problems.append(DeclarationError(err.message, where=where, hint=err.hint))
            return
        for entry in entries:
            where = f"{path}:{entry.line}:{entry.key}"
            try:
                self._entry(entry, path)
            except Invalid as err:
                self.problems.append(DeclarationError(err.message, where=where, hint=err.hint))
                self.failed.add(entry.key)
            if path == self.source:
                self.locations.setdefault(entry.key, entry.line)

    def _entry(self, entry: Entry, path: Path) -> None:
        if entry.section == "Service" and entry.key in _SERVICE_SETTINGS:
            service_setting = _SERVICE_SETTINGS[entry.key]
            value = entry.value
            if entry.key == "RestartSec":
                value = value.removesuffix("s")  # whole seconds: "5" or "5s"
            self._setting(service_setting, value, path)
            self.lines[service_setting.key] = f"{path}:{entry.line}:{entry.key}"
            return
        if entry.section == "Install" and entry.key == "DefaultInstance":
            self._default_instance(entry.value)
            return
        if entry.section in PASS_THROUGH:
            section = entry.section
            checks.check_directive(section, entry.key)
            value = entry.value
            if section == "Install":  # unit names: quadlet unquotes them
                value = " ".join(split_words(value))
            elif section == "Unit" and entry.key in _DEPENDENCY_DIRECTIVES:
                value, names = _translate_units(value)
                where = f"{path}:{entry.line}:{entry.key}"
                self.refs += [(kind, name, where) for kind, name in names]
            value = checks.check_directive_value(section, entry.key, value)
            self.sections.setdefault(PASS_THROUGH[section], []).append((entry.key, (value,)))
            return
        if entry.section == "Quadlet":
            quadlet_key = QUADLET_KEYS.get(entry.key)
            if quadlet_key is None:
                raise Invalid(
                    f"unsupported [Quadlet] key {entry.key!r}",
                    f"supported [Quadlet] keys: {', '.join(QUADLET_KEYS)}",
                )
            self.found[quadlet_key] = values.parse_bool(unquote(entry.value))
            return
        if entry.section != "Container":
            raise Invalid(
                f"section [{entry.section}] is not supported",
                "a .container file has [Container], [Unit], [Service], [Install] and "
                "[Quadlet]",
            )
        value = _expand(entry.value, self.specifiers)
        if entry.key in ("Volume", "Mount"):
            value, volume = quadlet_values.volume_ref(value, entry.key == "Mount")
            if volume is not None:
                self.refs.append(("volume", volume, f"{path}:{entry.line}:{entry.key}"))
        if entry.key in EXTRA_KEYS:
            self._extra(entry.key, value, path)
            return
        setting = BY_QUADLET.get(entry.key)
        if setting is None and entry.key in quadlet_keys.SAME_AS_DEFAULT:
            quadlet_keys.check_default(entry.key, unquote(value), self.name)
            return
        if setting is None and entry.key in quadlet_keys.REFUSED:
            raise quadlet_keys.refusal(entry.key, unquote(value))
        if setting is None:
            raise Invalid(
                f"unsupported key {entry.key!r}",
                f"{checks.suggest(entry.key, BY_QUADLET)}supported [Container] keys: "
                f"{SUPPORTED}",
            )
        if not value and setting.key != "entrypoint":
            self.found.pop(setting.key, None)  # an empty assignment resets, as in systemd
            if setting.key == "network":
                self.found.pop("networks", None)
                self.found.pop("network_aliases_by_network", None)
            return
        if setting.key == "log_driver" and unquote(value) == "k8s-file":
            raise Invalid("LogDriver=k8s-file is not supported",
                          "the container's output is in the journal (`hostctl logs NAME`, "
                          "journalctl -u NAME): use journald, passthrough or none")
        if setting.kind is Kind.POD:
            value = _pod_ref(unquote(value))
            self.refs.append(("pod", value, f"{path}:{entry.line}:{entry.key}"))
        aliases: tuple[str, ...] = ()
        if setting.kind is Kind.NETWORK:
            value, aliases = quadlet_values.network_options(unquote(value))
        if setting.kind is Kind.NETWORK and value.endswith(".network"):
            value = quadlet_values.network_ref(value)
        if setting.kind is Kind.IMAGE and unquote(value).endswith(".image"):
            self._image_ref(unquote(value), f"{path}:{entry.line}:{entry.key}")
            self.lines["image"] = f"{path}:{entry.line}:{entry.key}"
            return
        if setting.kind is Kind.IMAGE and unquote(value).endswith(".build"):
            self._build_ref(unquote(value))
            self.refs.append(("build", unquote(value).removesuffix(".build"),
                              f"{path}:{entry.line}:{entry.key}"))
            self.lines["image"] = f"{path}:{entry.line}:{entry.key}"
            return
        if setting.kind in (Kind.IMAGE, Kind.NETWORK) and unquote(value).endswith(_UNIT_REFS):
            raise Invalid(
                f"{unquote(value)!r} refers to a quadlet unit",
                "give an image reference, NAME.image or NAME.build, a network name or "
                "NAME.network (a pod's member: Pod=NAME.pod, and no Network=)",
            )
        if setting.key == "network" and "network" in self.found:
            setting = BY_KEY["networks"]  # a second Network=: one more network, as podman's
        self._setting(setting, value, path)
        self.lines[setting.key] = f"{path}:{entry.line}:{entry.key}"
        if aliases:  # Network=NAME:alias=A: names on NAME only
            key = "network_aliases_by_network"
            known = dict(self.found.get(key, ()))
            known[value] = tuple(dict.fromkeys((*known.get(value, ()), *aliases)))
            self.found[key] = tuple(known.items())
            self.lines[key] = f"{path}:{entry.line}:{entry.key}"

    def _setting(self, setting: Setting, value: str, path: Path) -> None:
        set_value(self.found, setting, value, path)

    def _add(self, key: str, *items: Any) -> None:
        self.found[key] = (*self.found.get(key, ()), *items)

    def _extra(self, key: str, value: str, path: Path) -> None:
        if key == "Mount":
            mount = quadlet_values.mount(value, path)
            self._add("tmpfs" if isinstance(mount, Tmpfs) else "volumes", mount)
            return
        if key == "VolatileTmp":
            self.volatile_tmp = values.parse_bool(value)  # applied in container()
            return
        if not values.parse_bool(value):
            return
        present = {m.destination for m in (*self.found.get("volumes", ()),
                                           *self.found.get("tmpfs", ()))}
        self._add("tmpfs", *(Tmpfs(d, ("rw",)) for d in _READ_ONLY_TMPFS if d not in present))

    def _image_ref(self, value: str, where: str) -> None:
        """Image=NAME.image: the reference and platform NAME.image (beside this file)
        pulls ahead; the container's unit waits for NAME-image.service."""
        from hostctl.declarations.image_file import load_image

        if "/" in value or "@" in value:
            raise Invalid(f"{value!r} is not a .image file name", "e.g. Image=app.image")
        image_path = self.source.parent / value
        if not image_path.is_file():
            raise Invalid(f"{value} is not declared", f"add {image_path}")
        try:
            image = load_image(image_path)
        except DeclarationError as err:
            raise Invalid(f"{value}: {err.where}: {err.message}", err.hint) from None
        self.found["image"] = image.reference
        if image.platform:
            self.found["platform"] = image.platform
        self.refs.append(("image", image.name, where))

    def _build_ref(self, value: str) -> None:
        """Image=NAME.build: the image NAME.build (beside this file) tags, built by the
        launcher when missing (hostctl.declarations.build_file)."""
        from hostctl.declarations.build_file import load_build

        if "/" in value or "@" in value:
            raise Invalid(f"{value!r} is not a .build file name", "e.g. Image=app.build")
        build_path = self.source.parent / value
        if not build_path.is_file():
            raise Invalid(f"{value} is not declared", f"add {build_path}")
        try:
            self.found["image"], self.found["build"] = load_build(build_path)
        except DeclarationError as err:  # said at this Image= line, the .build's place too
            raise Invalid(f"{value}: {err.where}: {err.message}", err.hint) from None

    def _default_instance(self, value: str) -> None:
        prefix, _instance, templated = checks.template_parts(self.name)
        if not templated:
            raise Invalid(
                "DefaultInstance= is for templates",
                f"name the file {prefix}@.container to make it a template",
            )
        value = unquote(value)
        checks.check_name(f"{prefix}@{value}")
        if not value or "@" in value:
            raise Invalid(f"{value!r} is not an instance name", "e.g. DefaultInstance=1")
        self.default_instance = value

    def container(self) -> Container:
        """The declaration read, or every problem found in its files (see raise_all)."""
        if "image" not in self.found and "Image" not in self.failed:
            self.problems.append(DeclarationError(
                "no Image= in [Container]", where=str(self.source), hint="add Image=REFERENCE"
            ))
        if "group" in self.found and "user" not in self.found:
            self.problems.append(DeclarationError(  # podman's rule: Group= alone is refused
                "Group= is given without User=",
                where=self.lines.get("group", str(self.source)),
                hint="add User= (a name or a uid) or drop Group=",
            ))
        raise_all(self.problems)
        if self.volatile_tmp and not self.found.get("read_only"):
            # podman: a tmpfs of 512M, mode 1777, on /tmp (a read-only container has one)
            present = {m.destination for m in (*self.found.get("volumes", ()),
                                               *self.found.get("tmpfs", ()))}
            if "/tmp" not in present:
                self._add("tmpfs", values.parse_tmpfs("/tmp:rw,size=512M,mode=1777"))
        elif self.volatile_tmp:
            present = {m.destination for m in (*self.found.get("volumes", ()),
                                               *self.found.get("tmpfs", ()))}
            if "/tmp" not in present:
                self._add("tmpfs", Tmpfs("/tmp", ("rw",)))
        found = dict(self.found)
        for setting_key, directives in self.sections.items():
            found[setting_key] = tuple(directives)
        try:
            values.check_combination(found)
        except values.Conflict as err:
            where = self.lines.get(err.key, str(self.source))
            raise DeclarationError(err.message, where=where, hint=err.hint) from None
        if self.default_instance is not None:
            found["default_instance"] = self.default_instance
        if self.refs:
            found["unit_refs"] = tuple(self.refs)
        if "service_name" in found and checks.template_parts(self.name)[2]:
            raise DeclarationError(
                "ServiceName= cannot rename a template's units",
                where=self.lines.get("service_name", str(self.source)),
                hint="drop ServiceName=; the units are named after the file",
            )
        return Container(
            name=self.name,
            source=self.source,
            locations=tuple(self.locations.items()),
            **found,
        )


def set_value(found: dict[str, Any], setting: Setting, value: str, path: Path) -> None:
    """Read VALUE, written in the quadlet file PATH, into FOUND[setting.key] (a list
    kind adds to what is there); shared with the .pod reader."""
    kind, key = setting.kind, setting.key
    if kind is Kind.ARGV:
        words = (split_words(value) if key in ("command", "reload_cmd")
                 else ([value] if value else []))
        found[key] = tuple(checks.check_string(w) for w in words)
    elif kind in _PAIR_KINDS:
        pairs = dict(found.get(key, ()))
        for word in split_words(value):
            name, equals, item = word.partition("=")
            if not equals:
                raise Invalid(f"{word!r} has no '='", "write NAME=VALUE")
            pairs[_PAIR_KINDS[kind](name)] = values.single_line(item, "value")
        found[key] = tuple(pairs.items())
    elif kind is Kind.SECRETS:
        _add(found, key, quadlet_values.secret(value))
    elif kind in _ITEM_PARSERS:
        if kind is Kind.ABSPATHS and not value.startswith("/"):
            value = os.path.join(os.path.dirname(os.path.abspath(path)), value)
        words = (split_words(value) if kind in _SPLIT_KINDS
                 else [quadlet_values.host_path(value, path)])
        for word in words:
            item = _ITEM_PARSERS[kind](word)
            _add(found, key, *(item if isinstance(item, tuple) and kind is Kind.PORTS
                               else (item,)))
    elif kind is Kind.PROC_PATHS:  # podman's a:b:c, several lines add up
        _add(found, key, *values_runtime.parse_proc_paths(unquote(value)))
    elif kind is Kind.SECCOMP and unquote(value) != values_runtime.UNCONFINED:
        profile = unquote(value)
        if not profile.startswith("/"):  # relative to the file, as quadlet does
            profile = os.path.join(os.path.dirname(os.path.abspath(path)), profile)
        found[key] = values_runtime.parse_seccomp(os.path.normpath(profile))
    elif kind is Kind.HEALTH_CMD:  # podman takes the value as one argument
        found[key] = values.parse_health_cmd(value)
    elif kind is Kind.CHOICE and setting.choices is not None:
        allowed = [str(choice) for choice in setting.choices]
        found[key] = setting.choices(checks.check_choice(unquote(value), allowed))
    else:
        found[key] = _SCALAR_PARSERS[kind](unquote(value))


def _add(found: dict[str, Any], key: str, *items: Any) -> None:
    found[key] = (*found.get(key, ()), *items)


def _expand(text: str, specifiers: dict[str, str] | None = None) -> str:
    """TEXT with %h, %t, %u, %U, %% and the unit's SPECIFIERS (%i, %I, %p, %P) expanded;
    other specifiers are refused."""
    if "%" not in text:
        return text
    import pwd

    from hostctl.paths import Scope, for_scope

    account = pwd.getpwuid(os.getuid())
    table = {
        "h": os.environ.get("HOME") or account.pw_dir,
        "t": str(for_scope(Scope.USER).run.parent) if os.getuid() else "/run",
        "u": account.pw_name,
        "U": str(os.getuid()),
        "%": "%",
        **(specifiers or {}),
    }
    out, index = [], 0
    while index < len(text):
        if text[index] == "%":
            code = text[index + 1 : index + 2]
            if code not in table:
                raise Invalid(
                    f"specifier %{code} is not supported here",
                    "use %h, %t, %u, %U, %%, and in a template %i, %I, %p or %P",
                )
            out.append(table[code])
            index += 2
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


def _pod_ref(value: str) -> str:
    """Pod=NAME.pod: the pod NAME.pod (or pods/NAME.yaml) declares
    (hostctl.declarations.pod_file)."""
    if not value.endswith(".pod"):
        raise Invalid(f"pod {value} is not Quadlet based",
                      f"write Pod={value}.pod and declare {value}.pod beside the container "
                      "(or pods/NAME.yaml)")
    name = value.removesuffix(".pod")
    if "@" in name:
        raise Invalid(f"{value!r} is a template pod", "hostctl has no pod templates")
    return values.parse_pod(name)


def _translate_units(value: str) -> tuple[str, list[tuple[str, str]]]:
    """The unit names of a dependency directive, NAME.container written as NAME.service,
    NAME.volume as NAME-volume.service, NAME.image as NAME-image.service and NAME.pod as
    NAME-pod.service (the units generated for them), and those (kind, NAME); other
    quadlet types are refused."""
    words, names = [], []
    for word in split_words(value):
        stem, dot, suffix = word.rpartition(".")
        if dot and f".{suffix}" == SUFFIX:
            words.append(f"{stem}.service")
            names.append(("container", stem))
        elif dot and suffix in ("volume", "image", "pod") and "@" not in stem:
            words.append(f"{stem}-{suffix}.service")
            names.append((suffix, stem))
        elif dot and suffix == "build":
            raise Invalid(
                f"{word!r}: hostctl generates no unit for a build",
                f"a container with Image={word} builds its image itself; drop it from the "
                "dependency",
            )
        elif dot and suffix == "network":
            raise Invalid(
                f"{word!r}: hostctl generates no unit for a network",
                f"a container with Network={word} waits for its network itself; drop it "
                "from the dependency",
            )
        elif dot and f".{suffix}" in _UNIT_REFS:
            raise Invalid(
                f"{word!r} refers to a .{suffix} unit, which hostctl does not support",
                "hostctl generates units for .container files; name a unit or a "
                ".container file",
            )
        else:
            words.append(word)
    return " ".join(words), names
