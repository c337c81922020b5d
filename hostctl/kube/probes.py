"""Kubernetes probes as hostctl health checks.

livenessProbe is the health check, and an unhealthy container is killed (its unit
fails and `restart:` applies, as the kubelet restarts it); startupProbe is the startup
phase of the check; readinessProbe makes the unit active only once the check passed
(`notify: healthy`): its command is the check when there is no livenessProbe, else the
startup phase when there is no startupProbe. exec runs in the container as it is;
httpGet and tcpSocket need a tool in the image, since the check runs inside the
container: httpGet runs `curl`, else `wget`, else (plain HTTP) sends the request with
`nc` (httpHeaders as -H, --header or request lines); tcpSocket connects with `nc`. An
image without any of them fails its checks (busybox has nc).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from hostctl.kube.documents import Fields

LIVENESS, READINESS, STARTUP = "livenessProbe", "readinessProbe", "startupProbe"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PROBE_FIELDS = ("exec", "httpGet", "tcpSocket", "initialDelaySeconds", "periodSeconds",
                 "timeoutSeconds", "failureThreshold", "successThreshold")


def probe_command(probe: Fields, ports: dict[str, int]) -> list[str] | str:
    """The check's command: a list (exec form) or a text run by /bin/sh -c."""
    probe.only(_PROBE_FIELDS)
    kinds = [k for k in ("exec", "httpGet", "tcpSocket") if k in probe.value]
    if len(kinds) != 1:
        raise probe.error("", "give exactly one of exec, httpGet, tcpSocket")
    if kinds[0] == "exec":
        action = probe.sub("exec")
        action.only(("command",))
        command = action.strings("command")
        if not command:
            raise action.error("command", "missing", "give the command as a list")
        return command
    if kinds[0] == "tcpSocket":
        action = probe.sub("tcpSocket")
        action.only(("port", "host"))
        host = shlex.quote(str(action.text("host", "127.0.0.1")))
        # nc without -z (busybox's) connects and ends at once with stdin closed
        return (f"nc -w {_timeout(probe)} {host} {_port(action, ports)} </dev/null "
                ">/dev/null 2>&1")
    return _http(probe, ports)


def _http(probe: Fields, ports: dict[str, int]) -> str:
    """curl, else wget, else (plain HTTP) a request through nc: a status from 200 to 399
    passes, as the kubelet judges it. A wget that cannot run (Debian's static busybox
    wget crashes) falls through to nc."""
    action = probe.sub("httpGet")
    action.only(("port", "path", "host", "scheme", "httpHeaders"))
    scheme = (action.text("scheme") or "HTTP").upper()
    if scheme not in ("HTTP", "HTTPS"):
        raise action.error("scheme", f"{scheme!r} is not HTTP or HTTPS")
    host = action.text("host", "127.0.0.1") or "127.0.0.1"
    port = _port(action, ports)
    path = action.text("path", "/") or "/"
    if not path.startswith("/"):
        path = "/" + path
    if any(c.isspace() for c in path + host):
        raise action.error("path", "white space in the host or path")
    url = shlex.quote(f"{scheme.lower()}://{host}:{port}{path}")
    timeout = _timeout(probe)
    headers = _headers(action)
    curl = "".join(f" -H {shlex.quote(f'{k}: {v}')}" for k, v in headers)
    wget = "".join(f" --header {shlex.quote(f'{k}: {v}')}" for k, v in headers)
    insecure = (" --no-check-certificate", " -k") if scheme == "HTTPS" else ("", "")
    text = (f"if command -v curl >/dev/null; then exec curl -fsS -m {timeout}{insecure[1]}"
            f"{curl} -o /dev/null {url}; fi; if command -v wget >/dev/null; then wget -q "
            f"-T {timeout}{insecure[0]}{wget} -O /dev/null {url}; r=$?; [ $r -lt 126 ] && "
            "exit $r; fi; ")
    if scheme == "HTTPS":
        return text + "exit 1"
    lines = [f"{k}: {v}" for k, v in headers]
    if not any(k.lower() == "host" for k, _ in headers):
        lines.insert(0, f"Host: {host}:{port}")
    head = "".join(f"{line}\r\n" for line in lines)
    request = shlex.quote(f"GET {path} HTTP/1.0\r\n{head}\r\n")
    return text + (f"printf %s {request} | nc -w {timeout} {shlex.quote(host)} {port} "
                   "| head -n 1 | grep -q '^HTTP/[0-9.]* [23]'")


def _headers(action: Fields) -> list[tuple[str, str]]:
    """httpGet's httpHeaders as (name, value), sent by curl -H, wget --header or in the
    request through nc."""
    headers = []
    for item in action.items("httpHeaders"):
        item.only(("name", "value"))
        name, value = item.required("name"), item.get("value", "")
        if not isinstance(value, str):
            raise item.error("value", f"{value!r} is not a string", "quote it")
        if not _TOKEN.fullmatch(name):
            raise item.error("name", f"{name!r} is not an HTTP header name")
        if any(c in value for c in "\r\n\0"):
            raise item.error("value", "a line break in a header value")
        headers.append((name, value))
    return headers


def _timeout(probe: Fields) -> int:
    return probe.integer("timeoutSeconds", 1) or 1


def _port(action: Fields, ports: dict[str, int]) -> int:
    value = action.get("port")
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value in ports:
        return ports[value]
    if isinstance(value, str) and value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    raise action.error("port", f"{value!r} is neither a port number nor a named "
                       "containerPort of this container")


def _timing(probe: Fields, prefix: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    period = probe.integer("periodSeconds", 1)
    timeout = probe.integer("timeoutSeconds", 1)
    settings[f"{prefix}interval"] = period if period is not None else 10
    settings[f"{prefix}timeout"] = timeout if timeout is not None else 1
    return settings


def health_settings(container: Fields, ports: dict[str, int]) -> dict[str, Any]:
    """The health_* and notify settings of CONTAINER's probes."""
    probes = {key: container.sub(key) for key in (LIVENESS, READINESS, STARTUP)
              if key in container.value}
    commands = {key: probe_command(probe, ports) for key, probe in probes.items()}
    for key in (LIVENESS, STARTUP):
        if key in probes and (probes[key].integer("successThreshold", 1) or 1) != 1:
            raise probes[key].error("successThreshold", "must be 1",
                                    "Kubernetes requires 1 for this probe")
    main, startup = _roles(probes, commands)
    settings: dict[str, Any] = {}
    if main is not None:
        probe = probes[main]
        settings["health_cmd"] = commands[main]
        settings.update(_timing(probe, "health_"))
        settings["health_retries"] = probe.integer("failureThreshold", 1) or 3
        settings["health_start_period"] = probe.integer("initialDelaySeconds") or 0
        if main == LIVENESS:
            settings["health_on_failure"] = "kill"
    if startup is not None:
        settings["health_startup_cmd"] = commands[startup]
        settings.update(_timing(probes[startup], "health_startup_"))
        if startup == STARTUP:
            settings["health_startup_retries"] = \
                probes[startup].integer("failureThreshold", 1) or 3
    if READINESS in probes:
        settings["notify"] = "healthy"
    return settings


def _roles(probes: dict[str, Fields], commands: dict[str, list[str] | str]
           ) -> tuple[str | None, str | None]:
    """Which probe is the health check and which the startup phase (module docstring)."""
    main = LIVENESS if LIVENESS in probes else READINESS if READINESS in probes else None
    startup = STARTUP if STARTUP in probes else None
    if READINESS not in probes or main == READINESS:
        return main, startup
    if commands[READINESS] in (commands.get(LIVENESS), commands.get(STARTUP)):
        return main, startup  # the same check: it only makes the unit wait for health
    if startup is None:
        return main, READINESS
    raise probes[READINESS].error("", "a third, different check: hostctl has one health "
                                  "check and one startup phase per container",
                                  "make the readinessProbe the same as the livenessProbe or "
                                  "startupProbe, or drop one")
