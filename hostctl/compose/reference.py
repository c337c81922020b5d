"""The compose section of docs/declarations.md, generated from the loader's own tables
(service keys, ignored keys and their reasons) so the reference cannot drift."""

from __future__ import annotations

from collections.abc import Iterable

from hostctl.compose.deploy import IGNORED_DEPLOY
from hostctl.compose.files import IGNORED_TOP
from hostctl.compose.resources import IGNORED as IGNORED_RESOURCES
from hostctl.compose.resources import KEYS as RESOURCE_KEYS
from hostctl.compose.service import BUILD_KEYS, IGNORED_KEYS, SERVICE_KEYS

INTRO = """
# Compose projects

A compose project is read as `docker compose` reads it, following the compose
specification: the files are the `-f` files in order, else `COMPOSE_FILE`, else the
first of `compose.yaml`, `compose.yml`, `docker-compose.yaml`, `docker-compose.yml` in
the project directory, with `compose.override.yaml` (or `.yml`, or the
`docker-compose.override.*` forms) merged over it. The project name is `-p`, else
`COMPOSE_PROJECT_NAME`, else the top-level `name:`, else the directory's name
(lowercased, characters other than letters, digits, `-` and `_` dropped).

- **Environment**: the process environment wins over `.env` in the project directory
  (or over the `--env-file` files, which replace `.env`). `.env` files are read as docker
  compose reads them: `export`, `KEY=value` or `KEY: value`, comments, single quotes
  (literal), double quotes (escapes, several lines), a bare `KEY` taken from the
  environment, and interpolation of earlier variables. `COMPOSE_PROFILES`,
  `COMPOSE_FILE`, `COMPOSE_PATH_SEPARATOR` and `COMPOSE_PROJECT_NAME` are read from both.
- **Interpolation** of values (never keys): `$VAR`, `${VAR}`, `${VAR:-default}` (unset or
  empty), `${VAR-default}` (unset), `${VAR:+replacement}`, `${VAR+replacement}`,
  `${VAR:?error}`, `${VAR?error}`, nested (`${A:-${B:-x}}`), `$$` for a `$`. An unset
  variable without a default is an empty string and a warning; a failed `?` names
  FILE:LINE:KEY and the variable.
- **YAML**: anchors, aliases and `<<` merge keys; YAML 1.2 scalars as compose's Go loader
  reads them (`yes`, `on`, `8080:80`, `1:30` are strings; a leading `0` is octal);
  duplicate keys are errors. `x-` keys are dropped at the top level, in services, and in
  networks, volumes, secrets and configs.
- **Merging** files and `extends`: mappings merge key by key (environment, labels,
  sysctls, depends_on, networks, build, deploy...; list forms are turned into mappings
  first); `command`, `entrypoint` and `healthcheck.test` are replaced; other lists are
  appended, de-duplicated by what identifies them: ports by host IP, published port,
  target and protocol, volumes and devices by target, secrets and configs by target,
  env_file by path, dns, expose, cap_add and the like by value. `!reset` removes a key
  (or a service), `!override` replaces instead of merging. `extends` (same file or
  `file:`) is recursive, loops are errors, and the extended file's relative paths
  resolve against its own directory; an override file's resolve against the project
  directory.
- **include**: each entry (a path, or `path`, `project_directory`, `env_file`) is loaded
  as a project of its own (its directory, its `.env`) and its services, networks,
  volumes, secrets and configs join the project; a name defined twice is an error.
- **Profiles**: a service without `profiles` is always enabled; one with profiles only
  when one of them is active (`--profile`, else `COMPOSE_PROFILES`; `*` enables all).
  A `depends_on` naming a disabled service is an error unless `required: false`
  (then the dependency is dropped).
- **Normalisation** (the model `hostctl compose config` prints, as `docker compose
  config` does): short syntax becomes long syntax (ports with ranges expanded,
  volumes, depends_on, devices, secrets, configs), environment lists become mappings
  and `env_file` entries (`required: false` ones may be missing, `format: raw` ones are
  taken as written) are read under
  `environment`, `label_file` under `labels`, string commands are split as a shell
  would, durations are written as Go writes them (`1m30s`), sizes become bytes, relative
  paths become absolute, every service without `networks` or `network_mode` is on the
  `default` network, and networks and volumes are named `PROJECT_NAME` unless
  `external` or named.
- **Checks**: unknown keys (with a did-you-mean hint), wrong types, malformed ports,
  volumes, durations, sizes and restart policies, and references to undefined
  services, networks, named volumes, secrets and configs are errors naming
  FILE:LINE:KEY, the file being the one the value came from (through overrides,
  `extends`, `include` and anchors).
"""


def _keys(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names))


def compose_reference() -> str:
    """The compose section as Markdown."""
    ignored = [f"| `services.*.{key}` | {reason} |" for key, reason in IGNORED_KEYS.items()]
    ignored += [
        f"| `services.*.deploy.{key}` | {reason} |" for key, reason in IGNORED_DEPLOY.items()
    ]
    ignored.append("| `services.*.deploy.mode: global` | one task per swarm node: one host |")
    ignored += [
        f"| `{section}.*.{key}` | {reason} |"
        for (section, key), reason in IGNORED_RESOURCES.items()
    ]
    ignored += [f"| `{key}` | {reason} |" for key, reason in IGNORED_TOP.items()]
    sections = "\n".join(f"- `{section}`: {_keys(keys)}" for section, keys in RESOURCE_KEYS.items())
    return (
        INTRO
        + "\n## Service keys\n\nEvery key of the specification is read and checked: "
        + _keys(SERVICE_KEYS)
        + ".\n\n`build` takes "
        + _keys(BUILD_KEYS)
        + ".\n\n## Top-level sections\n\n"
        + sections
        + "\n\n## Ignored keys\n\nKeys that mean nothing on one host are left out of the"
        " model and reported, each with its path, as ignored:\n\n| key | why |\n|---|---|\n"
        + "\n".join(ignored)
        + "\n\nAny other key is refused with FILE:LINE:KEY.\n"
    )
