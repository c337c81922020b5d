"""Registries configuration in containers' registries.conf (v2) format.

Files, as podman reads them: $CONTAINERS_REGISTRIES_CONF alone if set; else
~/.config/containers/registries.conf for non-root users if it exists, else
/etc/containers/registries.conf; then the drop-ins registries.conf.d/*.conf beside the
file, in name order (later files override keys). hostctl's own CONFIG/registries.conf
(/etc/hostctl or ~/.config/hostctl) is read last and wins.

    unqualified-search-registries = ["docker.io", "quay.io"]
    short-name-mode = "enforcing"          # or "permissive" / "disabled"
    [aliases]
    "busybox" = "docker.io/library/busybox"
    [[registry]]
    prefix = "example.com/team"            # or "*.example.com"; defaults to location
    location = "internal.example.com/mirror/team"
    insecure = false
    blocked = false
    mirror-by-digest-only = false
    [[registry.mirror]]
    location = "mirror.local:5000/team"
    insecure = true
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.errors import ImageError
from hostctl.images.reference import Reference, is_short_name, parse_reference

SHORT_NAME_MODES = ("enforcing", "permissive", "disabled")


@dataclass(frozen=True)
class Endpoint:
    """Where to fetch a reference from: the rewritten reference and its TLS policy."""

    reference: Reference
    insecure: bool = False
    mirror: bool = False


@dataclass(frozen=True)
class RegistryEntry:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirror_by_digest_only: bool = False
    mirrors: tuple[tuple[str, bool], ...] = ()  # (location, insecure)


@dataclass
class RegistriesConf:
    search: tuple[str, ...] = ()
    short_name_mode: str = "enforcing"
    aliases: dict[str, str] = field(default_factory=dict)
    registries: list[RegistryEntry] = field(default_factory=list)
    sources: tuple[Path, ...] = ()

    # -- short names ------------------------------------------------------------------

    def candidates(self, text: str) -> list[Reference]:
        """The references a name may mean: one for a qualified name or an alias."""
        if not is_short_name(text):
            return [parse_reference(text)]
        name, suffix = _split_suffix(text)
        alias = self.aliases.get(name) or self.aliases.get(name.removeprefix("library/"))
        if alias is not None:
            return [parse_reference(alias + suffix)]
        if not self.search:
            return [parse_reference(text)]  # docker.io, as docker does
        return [parse_reference(f"{registry}/{text}") for registry in self.search]

    def resolve_short(self, text: str) -> list[Reference]:
        """Candidates to try in order; an ambiguous short name in enforcing mode is an error."""
        found = self.candidates(text)
        if len(found) > 1 and self.short_name_mode == "enforcing":
            listed = ", ".join(str(c) for c in found)
            raise ImageError(
                f"short name {text!r} is ambiguous: it may mean {listed}",
                where=", ".join(str(s) for s in self.sources) or None,
                hint="use a fully qualified name, or add an alias under [aliases] in "
                "registries.conf",
            )
        return found

    # -- locations --------------------------------------------------------------------

    def entry_for(self, ref: Reference) -> RegistryEntry | None:
        """The [[registry]] whose prefix matches REF best (longest prefix wins)."""
        name = ref.name
        best: RegistryEntry | None = None
        for entry in self.registries:
            if _matches(entry.prefix, name) and (
                best is None or len(entry.prefix) > len(best.prefix)
            ):
                best = entry
        return best

    def endpoints(self, ref: Reference) -> list[Endpoint]:
        """Mirrors first, then the (possibly rewritten) primary location."""
        entry = self.entry_for(ref)
        if entry is None:
            return [Endpoint(ref)]
        if entry.blocked:
            raise ImageError(
                f"registry {entry.prefix} is blocked in registries.conf", where=str(ref),
                hint="remove `blocked = true` from its [[registry]] entry to allow pulls")
        found: list[Endpoint] = []
        if ref.digest is not None or not entry.mirror_by_digest_only:
            found += [Endpoint(_rewrite(ref, entry.prefix, loc), insecure, mirror=True)
                      for loc, insecure in entry.mirrors]
        found.append(Endpoint(_rewrite(ref, entry.prefix, entry.location), entry.insecure))
        return found

    def insecure(self, registry: str) -> bool:
        """Whether REGISTRY (host[:port]) may be reached without TLS verification, then
        over plain HTTP: an `insecure = true` entry names it by its location, by a
        wildcard prefix ("*.example.com"), or as an insecure mirror. (A prefix that is
        rewritten to another location makes only that location insecure.)"""
        host = registry.lower()
        for entry in self.registries:
            named = _host_of(entry.location) == host or _wildcard_host(entry.prefix, host)
            if entry.insecure and named:
                return True
            if any(_host_of(loc) == host and ins for loc, ins in entry.mirrors):
                return True
        return False


def _host_of(location: str) -> str:
    return location.split("/")[0].lower()


def _wildcard_host(prefix: str, host: str) -> bool:
    """"*.example.com" matches reg.example.com and reg.example.com:5000."""
    if not prefix.startswith("*."):
        return False
    return host.split(":")[0].endswith(prefix[1:].lower())


def _split_suffix(text: str) -> tuple[str, str]:
    """("name", ":tag@digest") of a short name."""
    cut = len(text)
    for mark in ("@", ":"):
        pos = text.find(mark)
        if pos >= 0:
            cut = min(cut, pos)
    return text[:cut], text[cut:]


def _matches(prefix: str, name: str) -> bool:
    if prefix.startswith("*."):
        host = name.split("/")[0]
        return host.endswith(prefix[1:])
    return name == prefix or name.startswith(prefix + "/")


def _rewrite(ref: Reference, prefix: str, location: str) -> Reference:
    if prefix.startswith("*.") or not location:
        return ref
    rest = ref.name[len(prefix):]
    name = location + rest
    suffix = (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")
    return parse_reference(name + suffix)


# -- loading ------------------------------------------------------------------------------


def config_files(hostctl_config: Path | None = None) -> list[Path]:
    env = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    if env:
        files = [Path(env)]
    else:
        user = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        main = user / "containers/registries.conf"
        if os.geteuid() == 0 or not main.exists():
            main = Path("/etc/containers/registries.conf")
        files = [main, *sorted(main.parent.glob("registries.conf.d/*.conf"))]
    if hostctl_config is not None:
        files.append(hostctl_config / "registries.conf")
    return [f for f in files if f.is_file()]


def load(files: list[Path] | None = None, hostctl_config: Path | None = None) -> RegistriesConf:
    conf = RegistriesConf()
    paths = config_files(hostctl_config) if files is None else files
    for path in paths:
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ImageError(f"cannot read registries configuration: {exc}",
                             where=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ImageError(f"invalid TOML: {exc}", where=str(path)) from None
        _merge(conf, doc, str(path))
    conf.sources = tuple(paths)
    return conf


def _merge(conf: RegistriesConf, doc: dict[str, Any], where: str) -> None:
    if "unqualified-search-registries" in doc:
        conf.search = tuple(_strings(doc["unqualified-search-registries"],
                                     f"{where}: unqualified-search-registries"))
    mode = doc.get("short-name-mode", conf.short_name_mode)
    if mode not in SHORT_NAME_MODES:
        raise ImageError(f"short-name-mode {mode!r} is not one of {', '.join(SHORT_NAME_MODES)}",
                         where=f"{where}: short-name-mode")
    conf.short_name_mode = mode
    aliases = doc.get("aliases", {})
    if not isinstance(aliases, dict):
        raise ImageError("aliases must be a table", where=f"{where}: aliases")
    for name, target in aliases.items():
        if not isinstance(target, str) or is_short_name(target):
            raise ImageError(f"alias {name!r} must map to a fully qualified name",
                             where=f"{where}: aliases.{name}")
        conf.aliases[name] = target
    registries = doc.get("registry", [])
    if not isinstance(registries, list):
        raise ImageError("registry must be an array of tables ([[registry]])",
                         where=f"{where}: registry")
    for number, table in enumerate(registries):
        entry = _entry(table, f"{where}: registry[{number}]")
        conf.registries = [e for e in conf.registries if e.prefix != entry.prefix] + [entry]


def _entry(table: object, where: str) -> RegistryEntry:
    if not isinstance(table, dict):
        raise ImageError("a [[registry]] entry must be a table", where=where)
    location = table.get("location", "")
    prefix = table.get("prefix") or location
    if not isinstance(location, str) or not isinstance(prefix, str) or not prefix:
        raise ImageError("a [[registry]] needs a location or prefix string", where=where)
    mirrors = []
    for number, mirror in enumerate(table.get("mirror", [])):
        if not isinstance(mirror, dict) or not isinstance(mirror.get("location"), str):
            raise ImageError("a mirror needs a location string",
                             where=f"{where}.mirror[{number}]")
        mirrors.append((mirror["location"], bool(mirror.get("insecure", False))))
    return RegistryEntry(
        prefix=prefix.rstrip("/"),
        location=location or prefix,
        insecure=bool(table.get("insecure", False)),
        blocked=bool(table.get("blocked", False)),
        mirror_by_digest_only=bool(table.get("mirror-by-digest-only", False)),
        mirrors=tuple(mirrors),
    )


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError("must be a list of strings", where=where)
    return list(value)
