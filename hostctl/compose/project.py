"""A compose project loaded into the canonical model: the public face of hostctl.compose.

load_project() finds the files (the -f files in order, else COMPOSE_FILE, else
compose.yaml / compose.yml / docker-compose.yaml / docker-compose.yml in the directory
plus compose.override.yaml / .yml / docker-compose.override.yaml / .yml), reads the
environment (the process environment over `.env` in the project directory, or over the
env files given, which replace `.env`), interpolates every value, resolves `extends`,
merges the files by the spec's rules, applies profiles and completes the model.
render_config() prints it as `docker compose config` does.

THE CANONICAL MODEL (the contract; plain dict/list/str/int/float/bool/None)

top level, in this order, sections absent when empty:
  name: str                       the project name
  services: {NAME: SERVICE}       only the services enabled by the active profiles
  networks: {NAME: {name: str, driver?, driver_opts?: {str: str}, ipam?, internal?: bool,
             enable_ipv6?: bool, labels?: {str: str}, external?: true}}
            `default` is present when a service uses it; `name` is always set:
            PROJECT_NAME, or the given `name`, or NAME when external.
  volumes:  {NAME: {name: str, driver?, driver_opts?, labels?, external?: true}} (same naming)
  secrets:  {NAME: {name?: str, file: abs path} | {name?, environment: VAR} |
             {name?, content: str} | {name: str, external: true}}
  configs:  same as secrets.
`x-` keys, `version` and `include` are not in the model.

SERVICE (keys present only when given, except where a default is stated):
  image: str                      required unless build is given
  build: {context: abs path or URL (default: the project directory),
          dockerfile: str (default "Dockerfile" unless dockerfile_inline), args?: {str:
          str|None}, target?, labels?: {str: str}, cache_from?: [str], ...}
  command, entrypoint: [str] | None    a string is split as a shell would
  environment: {str: str | None}  env_file entries read in order, `environment` over
          them; a `KEY` with no value takes the project environment's value, None when
          unset. Present when the service had environment or env_file.
  env_file, label_file: never present (read into environment / labels)
  ports: [{mode: "ingress"|"host", target: int, published?: str, protocol: "tcp"|"udp",
          host_ip?: str, name?, app_protocol?}]   ranges expanded, one item per port
  expose: [str]
  volumes: [{type: "bind"|"volume"|"tmpfs"|..., source?: str (absolute for bind; the
          volume's key for a named volume; absent for anonymous volumes and tmpfs),
          target: str, read_only?: true, bind?: {create_host_path: bool, selinux?: "z"|"Z",
          propagation?: str}, volume?: {nocopy: bool, subpath?: str}, tmpfs?: {size: int
          bytes, mode: int}}]       short syntax `./a:/b` has bind.create_host_path true
  tmpfs: [str]
  networks: {NET: None | {aliases?: [str], ipv4_address?: str, ipv6_address?: str,
          priority?: int, ...}}    `{default: None}` when neither networks nor
          network_mode is given
  network_mode: str
  depends_on: {SERVICE: {condition: "service_started"|"service_healthy"|
          "service_completed_successfully", required: bool, restart: bool}} (always all
          three keys). A required dependency on a service disabled by profiles is an error;
          one with required: false is dropped. docker compose's implicit dependencies are
          added (service_started, required): `service:NAME` in network_mode, ipc, pid,
          uts or cgroup and `links` (restart: true), `volumes_from` (restart: false).
          Dependency loops are errors.
  healthcheck: {test?: [str] (a string becomes ["CMD-SHELL", s]), interval?, timeout?,
          start_period?, start_interval?: duration, retries?: int, disable?: bool}
  deploy: {mode?: "replicated", replicas?: int, resources?: {limits?|reservations?:
          {cpus?: str ("0.5"), memory?: int bytes, pids?: int, devices?: [...]}},
          restart_policy?: {condition?: "none"|"on-failure"|"any", delay?: duration,
          max_attempts?: int, window?: duration}}
  restart: "no" | "always" | "on-failure[:N]" | "unless-stopped"
  mem_limit, mem_reservation, memswap_limit, shm_size: int bytes;  cpus: int | float
  stop_grace_period, cpu_rt_period, cpu_rt_runtime: duration
  ulimits: {NAME: int | {soft: int, hard: int}}
  sysctls, labels, annotations: {str: str}
  extra_hosts: [str "HOST:IP"]    (a mapping's values, one or a list, become items)
  dns, dns_search, dns_opt, cap_add, cap_drop, security_opt, group_add, links,
          external_links, volumes_from, device_cgroup_rules, profiles: [str]
  devices: [{source: str, target: str, permissions: str (default "rwm")}]
  secrets: [{source, target (default /run/secrets/SOURCE; relative -> under it), uid?:
          str, gid?: str, mode?: int}]    configs: the same, target default /SOURCE
  logging: {driver?: str, options?: {str: str}}
  user, working_dir, hostname, domainname, container_name, stop_signal, ipc, pid, uts,
          userns_mode, cgroup_parent, platform, runtime, mac_address, pull_policy: str
  init, read_only, privileged, tty, stdin_open, oom_kill_disable, attach: bool
  scale, pids_limit, oom_score_adj, mem_swappiness, cpu_shares, cpu_quota, ...: int
  gpus, post_start, pre_stop, blkio_config, storage_opt: as the spec writes them
durations are Go's canonical text: "30s", "1m30s", "500ms", "1h0m0s".

Keys that mean nothing on one host are not in the model; `ignored` lists them with a
reason: services.S.deploy.{placement, update_config, rollback_config, endpoint_mode,
labels}, deploy.mode global, services.S.{credential_spec, isolation, develop},
networks.N.attachable, top-level version.

where(*path) names the source of a key path as `FILE:LINE:KEY`, e.g.
`/srv/app/compose.override.yaml:12:services.web.ports[0]` (no space: the form of every
hostctl diagnostic): the file and line the value was written at, through overrides,
extends, include, anchors and env files; the nearest written parent for a value the
loader filled in (a default network, an env_file default); the first file otherwise.
Ignored keys keep their location too (where("services", "web", "deploy", "placement")).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from hostctl.compose import consistency, finalize
from hostctl.compose.files import Files
from hostctl.compose.interpolate import chained, read_env_file
from hostctl.compose.merge import merge, strip
from hostctl.compose.tree import Loc, Map
from hostctl.errors import DeclarationError

TYPE_CHECKING = False  # typing and dataclasses are not imported at run time: see ComposeProject
if TYPE_CHECKING:
    from typing import Any

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = (
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
)
_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class ComposeProject:
    """A loaded compose project: its name, directory, files and canonical model.

    Immutable, compared by value: a frozen dataclass written out, because importing
    dataclasses (inspect, ast, dis...) costs the generator more than loading a project.
    `source` is the model as read, with the location of every key (for where()).
    """

    __slots__ = ("directory", "dropped", "files", "ignored", "model", "name", "source")
    name: str
    directory: Path
    files: tuple[Path, ...]
    model: Mapping[str, Any]
    ignored: tuple[tuple[str, str], ...]
    source: Map
    dropped: Mapping[tuple[str | int, ...], Loc]

    def __init__(
        self,
        name: str,
        directory: Path,
        files: tuple[Path, ...],
        model: Mapping[str, Any],
        ignored: tuple[tuple[str, str], ...] = (),
        source: Map | None = None,
        dropped: Mapping[tuple[str | int, ...], Loc] | None = None,
    ) -> None:
        values = (name, directory, files, model, ignored, source or Map(), dropped or {})
        for key, value in zip(_FIELDS, values, strict=True):
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"ComposeProject is immutable: cannot set {key}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"ComposeProject is immutable: cannot delete {key}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ComposeProject):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in _FIELDS[:5])

    def __hash__(self) -> int:
        return hash((self.name, self.directory, self.files))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIELDS[:5])
        return f"ComposeProject({shown})"

    def where(self, *path: str | int) -> str:
        """`FILE:LINE:KEY` of the key PATH (or of its nearest parent known)."""
        key = _dotted(path)
        found = self.dropped.get(path) or finalize.find(self.source, path)
        if found is not None:
            return f"{found[0]}:{found[1]}:{key}"
        return f"{self.files[0]}:{key}" if self.files else key


_FIELDS = ("name", "directory", "files", "model", "ignored", "source", "dropped")


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_project(
    directory: Path | None = None,
    *,
    files: Sequence[Path] = (),
    name: str | None = None,
    env_files: Sequence[Path] = (),
    profiles: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ComposeProject:
    """The project in DIRECTORY (default: the first file's directory, else the current
    one), read and resolved. Raises DeclarationError naming FILE:LINE:KEY."""
    process = dict(os.environ if environ is None else environ)
    files = [Path(file).absolute() for file in files]
    root = (
        Path(directory).absolute()
        if directory is not None
        else (files[0].parent if files else Path.cwd())
    )
    dotenv = _dotenv(root, [Path(f).absolute() for f in env_files], process)
    lookup = chained(process, dotenv)
    files = files or _find_files(root, lookup("COMPOSE_FILE"), lookup)
    reader = Files(lookup, process, tuple(files))
    top: Map | None = None
    for file in files:
        loaded = reader.load(file, root)
        top = loaded if top is None else merge(top, loaded)
    assert top is not None
    if reader.markers:
        top = strip(top)
    project = _project_name(name, lookup("COMPOSE_PROJECT_NAME"), top, root)
    active = list(profiles) if profiles is not None else _split(lookup("COMPOSE_PROFILES"))
    if not isinstance(top.get("services"), Map):
        top.put("services", Map(top.at), top.at)
    consistency.implicit_dependencies(top["services"])
    finalize.apply_profiles(top, active)
    finalize.complete(top, project, root, lookup)
    top.pop("include", None)
    ignored, dropped = finalize.drop_ignored(top)
    model = Map(top.at)
    model.put("name", project, top.loc("name"))
    for key in ("services", "networks", "volumes", "secrets", "configs"):
        if key in top:
            model.put(key, top[key], top.loc(key))
    plain = finalize.to_plain(model)
    return ComposeProject(project, root, tuple(files), plain, tuple(ignored), model, dropped)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _dotenv(root: Path, env_files: Sequence[Path], process: Mapping[str, str]) -> dict[str, str]:
    """The project environment files: the given ones (each must exist), else `.env`."""
    lookup = chained(process)
    out: dict[str, str] = {}
    if env_files:
        for file in env_files:
            out.update(read_env_file(file, chained(process, out)))
        return out
    default = root / ".env"
    if default.is_file():
        out.update(read_env_file(default, lookup))
    return out


def _find_files(root: Path, compose_file: str | None, lookup: Any) -> list[Path]:
    if compose_file:
        separator = lookup("COMPOSE_PATH_SEPARATOR") or os.pathsep
        return [(root / part).absolute() for part in compose_file.split(separator) if part]
    base = next((root / name for name in DEFAULT_FILES if (root / name).is_file()), None)
    if base is None:
        raise DeclarationError(
            "no compose file",
            where=str(root),
            hint="create compose.yaml there, or name the files with -f",
        )
    override = next((root / name for name in OVERRIDE_FILES if (root / name).is_file()), None)
    return [base] if override is None else [base, override]


def _project_name(given: str | None, from_env: str | None, top: Map, root: Path) -> str:
    for candidate, origin in (
        (given, "-p"),
        (from_env, "COMPOSE_PROJECT_NAME"),
        (top.get("name"), "name"),
    ):
        if candidate:
            if not _PROJECT_NAME.fullmatch(candidate):
                where = (
                    f"{top.loc('name')[0]}:{top.loc('name')[1]}:name"
                    if origin == "name"
                    else origin
                )
                raise DeclarationError(
                    f"invalid project name {candidate!r}",
                    where=where,
                    hint="lowercase letters, digits, - and _, starting with a letter or digit",
                )
            return candidate
    normalised = re.sub(r"[^a-z0-9_-]", "", root.name.lower()).lstrip("_-")
    if not normalised:
        raise DeclarationError(
            f"cannot make a project name from the directory {root.name!r}",
            where=str(root),
            hint="give one with -p, COMPOSE_PROJECT_NAME or a top-level `name:`",
        )
    return normalised


def render_config(project: ComposeProject) -> str:
    """The project's model as YAML, as `docker compose config` prints it."""
    from hostctl.compose.render import render_model

    return render_model(project.model)
