"""Instructions that only change the image config: ENV, LABEL, USER, CMD, ENTRYPOINT,
EXPOSE, VOLUME, STOPSIGNAL, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER.

HEALTHCHECK is kept in config.Healthcheck in both formats ({Test, Interval, Timeout,
StartPeriod, StartInterval, Retries}, durations in nanoseconds), as hostctl's own health
checks read it; buildah 1.28 drops it from OCI images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hostctl.build.image import StageImage
from hostctl.build.lexer import Lexer, LexError
from hostctl.build.parser import INSTRUCTIONS, Instruction

DEFAULT_SHELL = ["/bin/sh", "-c"]
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}
_HEALTH_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval"}


def apply(image: StageImage, instruction: Instruction, lexer: Lexer,
          env: Mapping[str, str]) -> None:
    """Change IMAGE's config for INSTRUCTION (variables expanded with ENV)."""
    handler = _HANDLERS.get(instruction.keyword)
    if handler is None:
        raise instruction.error("not a config instruction")
    if instruction.flags and instruction.keyword != "HEALTHCHECK":
        raise instruction.error(f"unknown flag --{instruction.flags[0][0]}")
    try:
        handler(image, instruction, lexer, env)
    except LexError as exc:
        raise instruction.error(str(exc)) from None


def key_values(instruction: Instruction, lexer: Lexer, env: Mapping[str, str]
               ) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: KEY=VALUE ... or the legacy KEY VALUE form."""
    words = lexer.words(instruction.args, env)
    if not words:
        raise instruction.error("needs KEY=VALUE")
    if "=" in words[0]:
        pairs = []
        for word in words:
            key, sep, value = word.partition("=")
            if not sep or not key:
                raise instruction.error(f"{word!r} is not KEY=VALUE",
                                        hint="quote values that contain spaces")
            pairs.append((key, value))
        return pairs
    key, _, rest = instruction.args.strip().partition(" ")
    if not rest.strip():
        raise instruction.error(f"{key} has no value", hint=f"{instruction.keyword} KEY=VALUE")
    return [(lexer.word(key, env), lexer.word(rest.strip(), env))]


def _env(image: StageImage, instruction: Instruction, lexer: Lexer,
         env: Mapping[str, str]) -> None:
    for key, value in key_values(instruction, lexer, env):
        image.set_env(key, value)


def _label(image: StageImage, instruction: Instruction, lexer: Lexer,
           env: Mapping[str, str]) -> None:
    labels = dict(image.config.get("Labels") or {})
    labels.update(key_values(instruction, lexer, env))
    image.config["Labels"] = labels


def _word(instruction: Instruction, lexer: Lexer, env: Mapping[str, str]) -> str:
    value = lexer.word(instruction.args.strip(), env)
    if not value:
        raise instruction.error("needs a value")
    return value


def _user(image: StageImage, instruction: Instruction, lexer: Lexer,
          env: Mapping[str, str]) -> None:
    image.config["User"] = _word(instruction, lexer, env)


def _stopsignal(image: StageImage, instruction: Instruction, lexer: Lexer,
                env: Mapping[str, str]) -> None:
    signal = _word(instruction, lexer, env)
    if not re.fullmatch(r"(SIG)?[A-Z0-9+-]+|\d+", signal):
        raise instruction.error(f"invalid signal {signal!r}", hint="e.g. SIGTERM or 15")
    image.config["StopSignal"] = signal


def command_form(image: StageImage, instruction: Instruction, text: str | None = None
                 ) -> list[str]:
    """The JSON form as given, or the shell form run by the image's SHELL."""
    if text is None:
        json_args = instruction.json_args()
        if json_args is not None:
            return json_args
        text = instruction.args
    elif text.lstrip().startswith("["):
        import contextlib
        import json

        with contextlib.suppress(ValueError):  # not JSON: the shell form after all
            value = json.loads(text)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
    shell = image.config.get("Shell") or DEFAULT_SHELL
    return [*shell, text.strip()]


def _cmd(image: StageImage, instruction: Instruction, _lexer: Lexer,
         _env_: Mapping[str, str]) -> None:
    image.config["Cmd"] = command_form(image, instruction)
    image.cmd_in_stage = True


def _entrypoint(image: StageImage, instruction: Instruction, _lexer: Lexer,
                _env_: Mapping[str, str]) -> None:
    image.config["Entrypoint"] = command_form(image, instruction)
    if not image.cmd_in_stage:
        image.config.pop("Cmd", None)  # the base image's CMD no longer applies


def _expose(image: StageImage, instruction: Instruction, lexer: Lexer,
            env: Mapping[str, str]) -> None:
    ports = dict(image.config.get("ExposedPorts") or {})
    for word in lexer.words(instruction.args, env):
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise instruction.error(f"invalid protocol in {word!r}", hint="tcp, udp or sctp")
        low, _, high = port.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise instruction.error(f"invalid port {word!r}", hint="PORT[-PORT][/PROTO]")
        for number in range(int(low), int(high or low) + 1):
            ports[f"{number}/{proto}"] = {}
    image.config["ExposedPorts"] = ports


def _volume(image: StageImage, instruction: Instruction, lexer: Lexer,
            env: Mapping[str, str]) -> None:
    paths = instruction.json_args()
    if paths is None:
        paths = lexer.words(instruction.args, env)
    else:
        paths = [lexer.word(p, env) for p in paths]
    if not paths or not all(paths):
        raise instruction.error("needs a path")
    volumes = dict(image.config.get("Volumes") or {})
    volumes.update({p: {} for p in paths})
    image.config["Volumes"] = volumes


def _shell(image: StageImage, instruction: Instruction, _lexer: Lexer,
           _env_: Mapping[str, str]) -> None:
    shell = instruction.json_args()
    if not shell:
        raise instruction.error("needs the JSON form", hint='SHELL ["/bin/sh", "-c"]')
    image.config["Shell"] = shell


def parse_duration(text: str, instruction: Instruction, flag: str) -> int:
    """A Go duration (30s, 1m30s, 500ms) in nanoseconds."""
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise instruction.error(f"--{flag}={text} is not a duration", hint="e.g. 30s, 1m30s")
    return int(total)


def _healthcheck(image: StageImage, instruction: Instruction, _lexer: Lexer,
                 _env_: Mapping[str, str]) -> None:
    keyword, _, rest = instruction.args.strip().partition(" ")
    if keyword.upper() == "NONE":
        if rest.strip() or instruction.flags:
            raise instruction.error("HEALTHCHECK NONE takes no arguments or flags")
        image.config["Healthcheck"] = {"Test": ["NONE"]}
        return
    if keyword.upper() != "CMD" or not rest.strip():
        raise instruction.error("expects HEALTHCHECK [OPTIONS] CMD COMMAND or NONE")
    check: dict[str, object] = {}
    json_args = None
    stripped = rest.strip()
    if stripped.startswith("["):
        import json

        try:
            value = json.loads(stripped)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                json_args = value
        except ValueError:
            json_args = None
    check["Test"] = ["CMD", *json_args] if json_args is not None else ["CMD-SHELL", stripped]
    for name, value in instruction.flags:
        if name in _HEALTH_FLAGS:
            check[_HEALTH_FLAGS[name]] = parse_duration(value or "", instruction, name)
        elif name == "retries":
            if not (value or "").isdigit():
                raise instruction.error(f"--retries={value} is not a whole number")
            check["Retries"] = int(value or "0")
        else:
            raise instruction.error(f"unknown flag --{name}")
    image.config["Healthcheck"] = check


def _onbuild(image: StageImage, instruction: Instruction, _lexer: Lexer,
             _env_: Mapping[str, str]) -> None:
    text = instruction.args.strip()
    keyword = text.partition(" ")[0].upper()
    if keyword not in INSTRUCTIONS or keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise instruction.error(f"{keyword or 'nothing'} is not allowed after ONBUILD")
    image.config["OnBuild"] = [*(image.config.get("OnBuild") or []), text]


def _maintainer(image: StageImage, instruction: Instruction, _lexer: Lexer,
                _env_: Mapping[str, str]) -> None:
    image.author = instruction.args.strip()


_HANDLERS = {
    "ENV": _env, "LABEL": _label, "USER": _user, "STOPSIGNAL": _stopsignal, "CMD": _cmd,
    "ENTRYPOINT": _entrypoint, "EXPOSE": _expose, "VOLUME": _volume, "SHELL": _shell,
    "HEALTHCHECK": _healthcheck, "ONBUILD": _onbuild, "MAINTAINER": _maintainer,
}
