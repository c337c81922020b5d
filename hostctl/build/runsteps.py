"""RUN and COPY/ADD steps: their flags, what they read, and their cache material.

The cache material of a step is everything it depends on beyond the parent state: its
instruction text, for RUN the content of bind-mounted context files and the ids of
cache mounts and secrets (never a secret's content), for COPY/ADD the content digest of
its context sources or the key of the stage (or digest of the image) it copies from.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.build.cache import Material
from hostctl.build.config_steps import DEFAULT_SHELL
from hostctl.build.context import Context, Source
from hostctl.build.copy import CopyOptions
from hostctl.build.ignore import IgnoreRules
from hostctl.build.lexer import Lexer, LexError
from hostctl.build.parser import Instruction
from hostctl.build.run import RunSpec
from hostctl.build.stages import PROXY_ARGS

if TYPE_CHECKING:
    from hostctl.build.builder import Builder, StageState

_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_RUN_FLAGS = {"mount", "network"}
_COPY_FLAGS = {"from", "chown", "chmod", "exclude", "link"}
_ADD_FLAGS = {*_COPY_FLAGS, "checksum"}


@dataclass(frozen=True)
class MountSpec:
    kind: str  # bind, cache, tmpfs, secret
    target: str
    options: dict[str, str]


def _check_flags(instruction: Instruction, allowed: set[str]) -> None:
    for name, _ in instruction.flags:
        if name not in allowed:
            hint = "supported: " + ", ".join(f"--{a}" for a in sorted(allowed))
            if name in ("parents", "checksum", "keep-git-dir"):
                hint = f"--{name} is not supported yet; " + hint
            raise instruction.error(f"unknown flag --{name}", hint=hint)


def _shell_text(instruction: Instruction) -> str:
    text = instruction.args
    for doc in instruction.heredocs:
        text += "\n" + doc.body + doc.name
    return text


def run_material(builder: Builder, state: StageState, instruction: Instruction,
                 lexer: Lexer) -> tuple[RunSpec, str, Material, list[MountSpec]]:
    """The RunSpec of a RUN step, its history text, its cache material and its mounts."""
    _check_flags(instruction, _RUN_FLAGS)
    image = state.image
    shell = image.config.get("Shell") or DEFAULT_SHELL
    json_args = instruction.json_args()
    script: MountSpec | None = None
    if json_args is not None:
        args, shown = json_args, json.dumps(json_args)
    elif len(instruction.heredocs) == 1 and instruction.args.strip() in (
            f"<<{instruction.heredocs[0].name}", f"<<-{instruction.heredocs[0].name}"):
        body = instruction.heredocs[0].body
        args, shown = [*shell, body], body
        if body.startswith("#!"):
            # A script with its own interpreter runs as a file, as BuildKit does: bind
            # mounted under /dev (a tmpfs: nothing lands in the layer).
            target = f"/dev/pipes/{instruction.heredocs[0].name}"
            script = MountSpec("script", target, {"body": body})
            args = [target]
    else:
        text = _shell_text(instruction)
        args, shown = [*shell, text], text
    if not args:
        raise instruction.error("needs a command")
    builder.check_names(state, instruction, set(_VARIABLE.findall(shown)))
    env = dict(state.args)
    env.update(image.env())
    for name in PROXY_ARGS & set(builder.settings.build_args):
        env.setdefault(name, builder.settings.build_args[name])
    network = instruction.flag("network") or "host"
    if network not in ("host", "none", "default"):
        raise instruction.error(f"--network={network} is not supported",
                                hint="use --network=none or --network=host")
    mounts = [_parse_mount(m, instruction, lexer, builder.env_for(state))
              for m in instruction.flag_values("mount")]
    material: Material = [("instruction", f"RUN {shown}"), ("network", network)]
    material += [(f"mount {m.target}", _mount_material(builder, m, instruction))
                 for m in mounts]
    if script is not None:
        mounts.append(script)
    spec = RunSpec(args, env, image.config.get("User"), image.config.get("WorkingDir") or "/",
                   "none" if network == "none" else "host")
    return spec, f"RUN {shown}", material, mounts


def _parse_mount(text: str, instruction: Instruction, lexer: Lexer,
                 env: dict[str, str]) -> MountSpec:
    options: dict[str, str] = {}
    try:
        expanded = lexer.word(text, env)
    except LexError as exc:
        raise instruction.error(str(exc)) from None
    for field_ in expanded.split(","):
        key, sep, value = field_.partition("=")
        key = key.strip().lower()
        options[{"dst": "target", "destination": "target", "src": "source",
                 "readonly": "ro", "readwrite": "rw"}.get(key, key)] = value if sep else "true"
    kind = options.pop("type", "bind")
    if kind not in ("bind", "cache", "tmpfs", "secret"):
        raise instruction.error(f"--mount type={kind} is not supported",
                                hint="bind, cache, tmpfs or secret")
    for name in ("uid", "gid"):
        if name in options and not options[name].isdigit():
            raise instruction.error(f"--mount {name}={options[name]} is not a number")
    if "mode" in options and not re.fullmatch(r"[0-7]{3,4}", options["mode"]):
        raise instruction.error(f"--mount mode={options['mode']} is not an octal mode")
    target = options.pop("target", "")
    if kind == "secret" and not target:
        target = "/run/secrets/" + (options.get("id") or os.path.basename(
            options.get("source", "")))
    if not target.startswith("/"):
        if not target:
            raise instruction.error(f"--mount type={kind} needs target=PATH")
        target = "/" + target
    return MountSpec(kind, target, options)


def _mount_material(builder: Builder, mount: MountSpec, instruction: Instruction) -> str:
    text = f"{mount.kind} {mount.target} {sorted(mount.options.items())}"
    if mount.kind == "bind":
        ref = mount.options.get("from")
        if ref:
            _, key = builder.stage_image(ref, instruction)
            return f"{text} {key}"
        sources = builder.context.sources(mount.options.get("source", "."), instruction)
        return f"{text} {builder.context.digest(sources)}"
    if mount.kind == "secret":
        ident = mount.options.get("id") or os.path.basename(mount.target)
        if ident not in builder.settings.secrets and mount.options.get("required") == "true":
            raise instruction.error(f"secret {ident} was not given",
                                    hint=f"hostctl build --secret id={ident},src=FILE")
    return text


def mounts_for(builder: Builder, mounts: list[MountSpec], instruction: Instruction,
               step_dir: Path) -> list[dict[str, Any]]:
    """The OCI mounts of a RUN step's --mount flags (sources mounted under STEP_DIR)."""
    result: list[dict[str, Any]] = []
    for number, mount in enumerate(mounts):
        ro = mount.options.get("ro") == "true" or mount.kind == "secret" or (
            mount.kind == "bind" and mount.options.get("rw") != "true")
        options = ["rbind", "ro" if ro else "rw"]
        if mount.kind == "script":
            path = step_dir / "scripts" / os.path.basename(mount.target)
            path.parent.mkdir(exist_ok=True)
            path.write_text(mount.options["body"])
            os.chmod(path, 0o755)
            result.append({"destination": mount.target, "type": "bind", "source": str(path),
                           "options": ["rbind", "ro"]})
            continue
        if mount.kind == "tmpfs":
            size = mount.options.get("size")
            result.append({"destination": mount.target, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", *([f"size={size}"] if size else [])]})
            continue
        if mount.kind == "cache":
            ident = mount.options.get("id") or mount.target
            source = builder.cache_dir(ident)
            if "uid" in mount.options or "gid" in mount.options:
                os.chown(source, int(mount.options.get("uid", "0")),
                         int(mount.options.get("gid", "0")))
            if "mode" in mount.options:
                os.chmod(source, int(mount.options["mode"], 8))
            options = ["rbind", "ro" if mount.options.get("ro") == "true" else "rw"]
        elif mount.kind == "secret":
            ident = mount.options.get("id") or os.path.basename(mount.target)
            if ident not in builder.settings.secrets:
                continue
            source = builder.settings.secrets[ident]
        else:
            source = _bind_source(builder, mount, instruction, step_dir / f"mount{number}")
            if not ro:
                copy = step_dir / f"mount{number}-rw"
                if source.is_dir():
                    shutil.copytree(source, copy, symlinks=True)
                else:
                    shutil.copy2(source, copy)
                source = copy
        result.append({"destination": mount.target, "type": "bind", "source": str(source),
                       "options": options})
    return result


def _bind_source(builder: Builder, mount: MountSpec, instruction: Instruction,
                 directory: Path) -> Path:
    ref = mount.options.get("from")
    source = mount.options.get("source", "/")
    if ref:
        image, _ = builder.stage_image(ref, instruction)
        directory.mkdir(parents=True)
        rootfs = builder.mount_image(image, directory)
        builder.extra_mounts.append(rootfs)
        context = Context(rootfs, IgnoreRules(), scoped=True)
    else:
        context = builder.context
    found = context.sources(source, instruction)
    return found[0].path


# -- COPY and ADD ---------------------------------------------------------------------------


def copy_material(builder: Builder, state: StageState, instruction: Instruction,
                  lexer: Lexer) -> None:
    """Run a COPY or ADD step (through the builder's cache)."""
    add = instruction.keyword == "ADD"
    _check_flags(instruction, _ADD_FLAGS if add else _COPY_FLAGS)
    json_args = instruction.json_args()
    env = builder.env_for(state)
    try:
        if json_args is not None:
            words = [lexer.word(w, env) for w in json_args]
        else:
            words = lexer.words(instruction.args, env)
        ref = instruction.flag("from")
        ref = lexer.word(ref, env) if ref else None
        chown = instruction.flag("chown")
        chown = lexer.word(chown, env) if chown else None
        excludes = [lexer.word(e, env) for e in instruction.flag_values("exclude")]
        checksum = instruction.flag("checksum")
    except LexError as exc:
        raise instruction.error(str(exc)) from None
    builder.check_names(state, instruction, lexer.referenced)
    if len(words) < 2:
        raise instruction.error("needs a source and a destination",
                                hint=f"{instruction.keyword} SRC... DEST")
    *names, dest = words
    chmod = _chmod(instruction)
    link = _link(instruction)
    heredocs = {d.name: d for d in instruction.heredocs}
    urls = [n for n in names if _URL.match(n)]
    if urls and not add:
        raise instruction.error(f"COPY cannot fetch {urls[0]}", hint="use ADD for URLs")
    if checksum is not None and (len(urls) != 1 or len(names) != 1):
        raise instruction.error("--checksum needs exactly one URL source")
    if checksum is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", checksum):
        raise instruction.error(f"--checksum={checksum} is not sha256:HEX")
    workdir = state.image.config.get("WorkingDir") or "/"
    as_dir = dest.endswith("/") or len(names) > 1
    flags = "".join(f"--{n}={v} " for n, v in instruction.flags)
    history = f"{instruction.keyword} {flags}{' '.join([*names, dest])}"
    material: Material = [("instruction", history), ("working directory", workdir)]
    context = builder.context.excluding(excludes, instruction.where)
    fetched: dict[str, Path] = {}
    if ref is not None:
        if urls or heredocs:
            raise instruction.error("--from copies from a stage or image only")
        image, source_key = builder.stage_image(ref, instruction)
        material.append((f"stage or image {ref}", source_key))
    else:
        local = [n for n in names if n not in urls and not _heredoc_name(n, heredocs)]
        sources = [s for n in local for s in context.sources(n, instruction)]
        material.append(("the content of its sources", context.digest(sources)))
        material += [(f"heredoc {n}", d.body) for n, d in heredocs.items()]
        for url in urls:
            if checksum is not None:
                material.append((f"the checksum of {url}", checksum))
            else:
                fetched[url] = _download(url, builder.work_dir("downloads"), instruction,
                                         None)
                material.append((f"the content of {url}", "sha256:" + _sha256(fetched[url])))

    def action(rootfs: Path, step_dir: Path) -> None:
        if link and chown and not all(p.isdigit() for p in chown.split(":")):
            # Names are looked up in the image the layer goes on.
            users = builder.mount_image(state.image, step_dir / "users")
            builder.extra_mounts.append(users)
            owner = _owner(chown, users, instruction)
        else:
            owner = _owner(chown, rootfs, instruction)
        options = CopyOptions(owner, chmod, add, builder.settings.rootless)
        if ref is not None:
            source_root = builder.mount_image(image, step_dir / "from")
            builder.extra_mounts.append(source_root)
            scoped = Context(source_root, IgnoreRules(), scoped=True).excluding(
                excludes, instruction.where)
            found = [s for name in names for s in scoped.sources(name, instruction)]
            builder.copy_into(rootfs, scoped, found, dest, workdir, options, instruction,
                              as_dir=as_dir)
            return
        for url in urls:
            if url not in fetched:
                fetched[url] = _download(url, builder.work_dir("downloads"), instruction,
                                         checksum)
        groups = _grouped(context, names, heredocs, fetched, instruction, lexer, env,
                          step_dir)
        for group_context, found, unpack in groups:
            group_options = options if unpack else CopyOptions(owner, chmod, False,
                                                               options.rootless)
            builder.copy_into(rootfs, group_context, found, dest, workdir, group_options,
                              instruction, as_dir=as_dir)

    builder.fs_step(state, instruction, material, action, history, link=link)


def _link(instruction: Instruction) -> bool:
    value = instruction.flag("link")
    if value is None or value in ("", "true"):
        return value is not None
    if value == "false":
        return False
    raise instruction.error(f"--link={value}: expected true or false")


_URL = re.compile(r"^https?://")


def _heredoc_name(name: str, heredocs: dict[str, Any]) -> bool:
    return name.startswith("<<") and name.lstrip("<-") in heredocs


def _sha256(path: Path) -> str:
    from hostctl.build.context import file_sha256

    return file_sha256(path)


def _download(url: str, directory: Path, instruction: Instruction,
              checksum: str | None) -> Path:
    """URL fetched into DIRECTORY (mode 0600, mtime from Last-Modified, as docker does);
    verified against CHECKSUM when given."""
    import email.utils
    import hashlib
    import urllib.parse

    import urllib3

    name = os.path.basename(urllib.parse.urlsplit(url).path) or "download"
    target = directory / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        response = urllib3.PoolManager().request(
            "GET", url, preload_content=False, timeout=urllib3.Timeout(connect=15, read=60))
        try:
            if response.status != 200:
                raise instruction.error(f"fetching {url}: HTTP {response.status}")
            with open(target, "wb") as handle:
                for chunk in response.stream(1 << 20):
                    handle.write(chunk)
            modified = response.headers.get("Last-Modified")
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise instruction.error(f"fetching {url}: {exc}") from None
    if checksum is not None and "sha256:" + _sha256(target) != checksum:
        raise instruction.error(f"{url} does not match --checksum={checksum}",
                                hint=f"it hashes to sha256:{_sha256(target)}")
    os.chmod(target, 0o600)
    if modified:
        with contextlib.suppress(TypeError, ValueError):
            stamp = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(target, (stamp, stamp))
    return target


def _grouped(context: Context, names: list[str], heredocs: dict[str, Any],
             fetched: dict[str, Path], instruction: Instruction, lexer: Lexer,
             env: dict[str, str], step_dir: Path
             ) -> list[tuple[Context, list[Source], bool]]:
    """(context, sources, unpack archives) per kind of source: the context's (ADD
    unpacks their archives), heredocs, downloaded URLs (never unpacked)."""
    groups: list[tuple[Context, list[Source], bool]] = []
    context_sources: list[Source] = []
    docs = step_dir / "heredocs"
    for name in names:
        if name in fetched:
            path = fetched[name]
            groups.append((Context(path.parent, IgnoreRules()),
                           [Source(path.name, path, False)], False))
            continue
        doc = heredocs.get(name.lstrip("<-")) if name.startswith("<<") else None
        if doc is None:
            context_sources += context.sources(name, instruction)
            continue
        docs.mkdir(exist_ok=True)
        body = lexer.expand(doc.body, env) if doc.expand else doc.body
        path = docs / doc.name
        path.write_text(body)
        os.chmod(path, 0o644)
        groups.append((Context(docs, IgnoreRules()), [Source(doc.name, path, False)], False))
    if context_sources:
        groups.insert(0, (context, context_sources, True))
    return groups


def _chmod(instruction: Instruction) -> int | None:
    text = instruction.flag("chmod")
    if text is None:
        return None
    if not re.fullmatch(r"[0-7]{3,4}", text):
        raise instruction.error(f"--chmod={text} is not an octal mode", hint="e.g. --chmod=755")
    return int(text, 8)


def _owner(text: str | None, rootfs: Path, instruction: Instruction) -> tuple[int, int] | None:
    if not text:
        return None
    from hostctl.errors import HostctlError
    from hostctl.runtime.users import _lookup_group, _resolve

    user, sep, group = text.partition(":")
    try:
        identity = _resolve(str(rootfs), user)
        gid = _lookup_group(str(rootfs), group) if sep and group else identity.gid
    except HostctlError as exc:
        raise instruction.error(f"--chown={text}: {exc.message}", hint=exc.hint) from None
    return identity.uid, gid
