"""Stages and their order: FROM lines, global ARGs, --target, and which stage needs which.

A stage is a FROM and the instructions up to the next FROM. Its base is an image,
`scratch`, or another stage (by its AS name, case-insensitive, or its index); COPY
--from and RUN --mount=from= may name stages too. The stages a build runs are those the
target needs, each after the stages it needs; a stage that needs itself, directly or
through others, is a cycle and an error.

ARGs before the first FROM are global: FROM lines may use them, and a stage sees one
only after an `ARG NAME` of its own (which takes the global value unless it gives a
default and no --build-arg overrides it). The platform ARGs (TARGETPLATFORM, BUILDOS...)
are predefined in the global scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hostctl.build.lexer import Lexer, LexError
from hostctl.build.parser import BuildError, Containerfile, Instruction
from hostctl.images.manifest import Platform, host_platform, parse_platform

PROXY_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9._-]*$")


def platform_args(platform: Platform) -> dict[str, str]:
    text = str(platform)
    values = {"PLATFORM": text, "OS": platform.os, "ARCH": platform.architecture,
              "VARIANT": platform.variant or ""}
    args = {f"TARGET{k}": v for k, v in values.items()}
    args.update({f"BUILD{k}": v for k, v in values.items()})
    return args


@dataclass
class Stage:
    index: int
    name: str | None
    source: Instruction  # its FROM
    base: str  # the FROM argument with global ARGs expanded
    base_stage: int | None
    instructions: list[Instruction] = field(default_factory=list)
    needs: dict[int, Instruction] = field(default_factory=dict)  # stage -> the line needing it

    @property
    def label(self) -> str:
        return self.name or str(self.index)


@dataclass
class Plan:
    stages: list[Stage]
    target: Stage
    order: list[Stage]  # the stages to build, each after those it needs
    global_args: dict[str, str | None]  # declared before FROM: value (None: no value)
    global_env: dict[str, str]  # what FROM lines expand with
    escape: str
    declared: set[str]  # every ARG name declared anywhere


def make_plan(containerfile: Containerfile, build_args: dict[str, str],
              target: str | None) -> Plan:
    """The stages of CONTAINERFILE and the order to build those TARGET (default: the last)
    needs; BuildError for a missing FROM, a bad stage name, a missing target or a cycle."""
    lexer = Lexer(containerfile.escape)
    predefined = platform_args(host_platform())
    global_args: dict[str, str | None] = {}
    global_env = dict(predefined)
    stages: list[Stage] = []
    declared: set[str] = set()
    for instruction in containerfile.instructions:
        if instruction.keyword == "FROM":
            stages.append(_stage(instruction, len(stages), stages, global_env, lexer))
        elif not stages:
            if instruction.keyword != "ARG":
                raise instruction.error("only ARG may come before the first FROM",
                                        hint="start the file with FROM IMAGE")
            for name, default in parse_arg(instruction, lexer, global_env):
                declared.add(name)
                value = build_args.get(name, default)
                global_args[name] = value
                if value is not None:
                    global_env[name] = value
        else:
            if instruction.keyword == "ARG":
                declared.update(n for n, _ in parse_arg(instruction, lexer, None))
            stages[-1].instructions.append(instruction)
    if not stages:
        raise BuildError("no FROM instruction", where=containerfile.path,
                         hint="a Containerfile starts with FROM IMAGE (or FROM scratch)")
    for stage in stages:
        _needs(stage, stages, global_env, lexer)
    chosen = _target(stages, target, containerfile.path)
    return Plan(stages, chosen, _order(stages, chosen), global_args, global_env,
                containerfile.escape, declared)


def parse_arg(instruction: Instruction, lexer: Lexer, env: dict[str, str] | None
              ) -> list[tuple[str, str | None]]:
    """ARG NAME[=default] ... as (name, default expanded with ENV, or None)."""
    try:
        words = lexer.words(instruction.args, env or {}) if env is not None else \
            instruction.args.split()
    except LexError as exc:
        raise instruction.error(str(exc)) from None
    if not words:
        raise instruction.error("needs a name", hint="ARG NAME or ARG NAME=default")
    result = []
    for word in words:
        name, sep, default = word.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise instruction.error(f"invalid argument name {name!r}")
        result.append((name, default if sep else None))
    return result


def _stage(instruction: Instruction, index: int, stages: list[Stage], env: dict[str, str],
           lexer: Lexer) -> Stage:
    try:
        words = lexer.words(instruction.args, env)
    except LexError as exc:
        raise instruction.error(str(exc)) from None
    name = None
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not _STAGE_NAME.match(name):
            raise instruction.error(f"invalid stage name {words[2]!r}",
                                    hint="letters, digits, '.', '_' and '-', starting "
                                    "with a letter")
        if any(s.name == name for s in stages):
            raise instruction.error(f"stage name {name!r} is used twice")
    elif len(words) != 1:
        raise instruction.error("expects FROM IMAGE [AS NAME]")
    platform = instruction.flag("platform")
    if platform is not None:
        _check_platform(instruction, lexer.word(platform, env))
    for flag, _ in instruction.flags:
        if flag != "platform":
            raise instruction.error(f"unknown flag --{flag}")
    return Stage(index, name, instruction, words[0], None)


def _check_platform(instruction: Instruction, text: str) -> None:
    try:
        wanted = parse_platform(text)
    except Exception as exc:
        raise instruction.error(f"bad --platform {text!r}: {exc}") from None
    here = host_platform()
    if (wanted.os, wanted.architecture) != (here.os, here.architecture):
        raise instruction.error(f"--platform {text} is not this machine's platform ({here})",
                                hint="builds run here: cross-platform builds need emulation")


def find_stage(stages: list[Stage], ref: str, before: int | None = None) -> Stage | None:
    """The stage REF names (an AS name or an index), else None (then it is an image)."""
    if ref.isdigit():
        index = int(ref)
        return stages[index] if index < len(stages) else None
    lowered = ref.lower()
    for stage in stages:
        if stage.name == lowered:
            return stage
    return None


def _needs(stage: Stage, stages: list[Stage], env: dict[str, str], lexer: Lexer) -> None:
    base = find_stage(stages, stage.base)
    if base is not None:
        stage.base_stage = base.index
        stage.needs[base.index] = stage.source
    for instruction in stage.instructions:
        refs = []
        if instruction.keyword in ("COPY", "ADD"):
            refs += instruction.flag_values("from")
        if instruction.keyword == "RUN":
            for mount in instruction.flag_values("mount"):
                refs += [v.partition("=")[2] for v in mount.split(",")
                         if v.startswith("from=")]
        for ref in refs:
            try:
                expanded = lexer.word(ref, env)
            except LexError as exc:
                raise instruction.error(str(exc)) from None
            found = find_stage(stages, expanded)
            if found is not None:
                stage.needs.setdefault(found.index, instruction)


def _target(stages: list[Stage], target: str | None, path: str) -> Stage:
    if target is None:
        return stages[-1]
    found = find_stage(stages, target)
    if found is None:
        names = ", ".join(s.label for s in stages)
        raise BuildError(f"no stage named {target!r}", where=path, hint=f"stages: {names}")
    return found


def _order(stages: list[Stage], target: Stage) -> list[Stage]:
    order: list[Stage] = []
    state: dict[int, str] = {}

    def visit(stage: Stage, trail: list[Stage]) -> None:
        mark = state.get(stage.index)
        if mark == "done":
            return
        if mark == "active":
            cycle = [*trail[trail.index(stage):], stage]
            line = trail[-1].needs[stage.index]
            raise line.error("stage cycle: " + " -> ".join(s.label for s in cycle),
                             hint="a stage cannot use itself, directly or through others")
        state[stage.index] = "active"
        for needed in sorted(stage.needs):
            visit(stages[needed], [*trail, stage])
        state[stage.index] = "done"
        order.append(stage)

    visit(target, [])
    return order
