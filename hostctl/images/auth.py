"""Registry credentials (auth.json files) and WWW-Authenticate challenges.

Credential files, first match wins, in the order podman and skopeo read them:
$REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json (or /run/containers/UID/ for
root without XDG_RUNTIME_DIR), ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
~/.docker/config.json. Inside a file the most specific key wins: "host/ns/repo" before
"host/ns" before "host". A file's credential helpers are asked first: credHelpers
{"host": "NAME"} (then credsStore "NAME") runs `docker-credential-NAME get` with the host on
stdin, which answers {"Username": ..., "Secret": ...}.

`hostctl login` writes auth.json (mode 0600, its directory 0700) through save_login();
passwords travel on stdin only, never in process arguments.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hostctl.errors import ImageError
from hostctl.images.reference import DOCKER_HUB, DOCKER_HUB_ALIASES, Reference

_MAX_AUTH_FILE = 1024 * 1024


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic", lowercased
    params: dict[str, str]


def default_auth_files() -> tuple[Path, ...]:
    """The credential files to read, most preferred first."""
    home = Path(os.environ.get("HOME") or os.path.expanduser("~"))
    files: list[Path] = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        files.append(Path(runtime) / "containers/auth.json")
    elif os.geteuid() == 0:
        files.append(Path("/run/containers/0/auth.json"))
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files.append(config / "containers/auth.json")
    files.append(home / ".docker/config.json")
    return tuple(files)


def find_credentials(ref: Reference, files: tuple[Path, ...] | None = None) -> Credentials | None:
    """Credentials for REF's registry/repository from the first file that has any."""
    for path in default_auth_files() if files is None else files:
        doc = _read_doc(path)
        helpers = doc.get("credHelpers")
        helper = helpers.get(ref.registry) if isinstance(helpers, dict) else None
        if isinstance(helper, str) and helper:
            found = helper_get(helper, ref.registry, where=str(path))
            if found is not None:
                return found
        auths = _auths_of(doc, path)
        for key in _lookup_keys(ref):
            if key in auths:
                return auths[key]
        store = doc.get("credsStore")
        if isinstance(store, str) and store:
            found = helper_get(store, ref.registry, where=str(path))
            if found is not None:
                return found
    return None


def helper_get(name: str, registry: str, *, where: str) -> Credentials | None:
    """Ask docker-credential-NAME for REGISTRY's credentials (None if it has none)."""
    import shutil
    import subprocess

    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ImageError(f"invalid credential helper name {name!r}", where=where)
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        raise ImageError(f"credential helper docker-credential-{name} not found", where=where,
                         hint="install it, or remove it from credHelpers/credsStore")
    done = subprocess.run([program, "get"], input=registry.encode(), capture_output=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        if b"not found" in done.stdout.lower() + done.stderr.lower():
            return None
        message = done.stderr.decode(errors="replace").strip()[:200]
        raise ImageError(f"credential helper docker-credential-{name} failed: {message}",
                         where=where)
    try:
        answer = json.loads(done.stdout)
        return Credentials(str(answer["Username"]), str(answer["Secret"]))
    except (ValueError, KeyError, TypeError):
        raise ImageError(f"credential helper docker-credential-{name} answered without "
                         "Username and Secret", where=where) from None


def login_file() -> Path:
    """Where `hostctl login` writes: $REGISTRY_AUTH_FILE, else the runtime auth.json."""
    return default_auth_files()[0]


def save_login(path: Path, registry: str, creds: Credentials) -> None:
    """Store CREDS for REGISTRY in PATH (created 0600, other entries kept)."""
    doc = _read_doc(path)
    auths = doc.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise ImageError("auths is not an object", where=str(path))
    raw = f"{creds.username}:{creds.password}".encode()
    auths[registry] = {"auth": base64.b64encode(raw).decode()}
    _write_doc(path, doc)


def remove_login(path: Path, registry: str) -> bool:
    """Forget REGISTRY's entry in PATH; False if there was none."""
    doc = _read_doc(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return False
    keys = [k for k in auths if _normalise_key(str(k)) == _normalise_key(registry)]
    for key in keys:
        del auths[key]
    if keys:
        _write_doc(path, doc)
    return bool(keys)


def _write_doc(path: Path, doc: dict[str, object]) -> None:
    import tempfile

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".auth-", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(doc, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _lookup_keys(ref: Reference) -> list[str]:
    """Most specific first: host/a/b, host/a, host."""
    parts = ref.repository.split("/")
    return [f"{ref.registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)] + [
        ref.registry
    ]


def _normalise_key(key: str) -> str:
    key = re.sub(r"^https?://", "", key).rstrip("/")
    key = re.sub(r"/v[12]$", "", key)
    host, slash, rest = key.partition("/")
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    return host + slash + rest


def load_auth_file(path: Path) -> dict[str, Credentials]:
    """The credentials in PATH (registry -> credentials), read as a pull reads them;
    ImageError naming PATH when it is not a valid credentials file."""
    return _read_auths(path)


def _read_auths(path: Path) -> dict[str, Credentials]:
    return _auths_of(_read_doc(path), path)


def _read_doc(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_AUTH_FILE + 1)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise ImageError(f"cannot read credentials: {exc.strerror}", where=str(path)) from None
    if len(raw) > _MAX_AUTH_FILE:
        raise ImageError("credentials file larger than 1 MiB", where=str(path))
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"invalid JSON: {exc}", where=str(path)) from None
    if not isinstance(doc, dict):
        raise ImageError("not a JSON object", where=str(path))
    return doc


def _auths_of(doc: dict[str, object], path: Path) -> dict[str, Credentials]:
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return {}
    found: dict[str, Credentials] = {}
    for key, entry in auths.items():
        creds = _decode_entry(entry, where=f"{path}: auths.{key}")
        if creds is not None:
            found.setdefault(_normalise_key(str(key)), creds)
    return found


def _decode_entry(entry: object, *, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ImageError("auth is not base64 of user:password", where=where) from None
        user, colon, password = decoded.partition(":")
        if not colon:
            raise ImageError("auth is not base64 of user:password", where=where)
        return Credentials(user, password)
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credentials(entry["username"], entry["password"])
    return None


_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str) -> Challenge | None:
    """Parse `Bearer realm="...",service="...",scope="..."` (or Basic); None if unusable."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("bearer", "basic"):
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match or match.end() == pos:
            break
        value = match.group(2)
        value = re.sub(r"\\(.)", r"\1", value) if value is not None else match.group(3)
        params[match.group(1).lower()] = value
        pos = match.end()
    return Challenge(scheme.lower(), params)
