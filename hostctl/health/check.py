"""A check as the timer (and `hostctl healthcheck`) runs it: one step against the state.

step() runs the startup probe while the startup phase lasts, else the regular check,
records the result in health.json and returns what changed. When the status changes a
line goes to the journal (notice: passing the unit's LogLevelMax=notice, which keeps
systemd's own per-run lines out), and when it becomes (or stays) unhealthy,
health_on_failure acts on the unit: kill sends SIGKILL to the container's init (the
unit's main process: the unit fails and `restart:` applies), stop and restart ask
systemd for that job without waiting for it (the job stops this check's own units).
"""

from __future__ import annotations

import time

from hostctl.errors import CannotCheck
from hostctl.health import status
from hostctl.health.run import Container, execute, kill, load_store, say, systemctl_no_block

TYPE_CHECKING = False  # typing itself is not imported on the check path
if TYPE_CHECKING:
    from typing import Any

NOTICE, WARNING = 5, 4


class Step:
    """What one step did: the entry it logged, the status before and after, and for a
    startup probe its outcome (hostctl.health.status.PROBE_*)."""

    __slots__ = ("before", "entry", "probe", "state")

    def __init__(self, before: str, state: dict[str, Any], entry: dict[str, Any],
                 probe: str | None) -> None:
        self.before, self.state, self.entry, self.probe = before, state, entry, probe

    @property
    def after(self) -> str:
        return str(self.state.get("status"))

    @property
    def passed(self) -> bool:
        return bool(self.entry["exit_code"] == 0)


def step(container: Container, store: dict[str, Any]) -> Step | None:
    """Run the probe or check that is due by STORE (status.load_store) and record it;
    None when the container's state is gone (it stopped meanwhile)."""
    spec = store["spec"]
    current = status.load_store(container.bundle)
    if current is None:
        return None
    startup = status.in_startup(current["state"], spec)
    test = spec["startup"] if startup else spec
    entry = execute(container, store["process"], test["test"], float(test["timeout"]))
    before: list[str] = []
    probe: list[str] = []

    def change(state: dict[str, Any]) -> None:
        before.append(str(state.get("status")))
        if startup and status.in_startup(state, spec):
            probe.append(status.record_probe(state, spec, entry))
        elif not startup:
            status.record_check(state, spec, entry)

    state = status.update(container.bundle, change)
    if state is None or not before:
        return None
    return Step(before[0], state, entry, probe[0] if probe else None)


def report(container: Container, done: Step) -> None:
    """The journal line for a status change or a startup phase's end."""
    output = done.entry["output"].splitlines()
    last = f" (last output: {output[-1]})" if output else ""
    if done.after != done.before:
        level = WARNING if done.after == status.UNHEALTHY else NOTICE
        say(f"{container.name}: health {done.before} -> {done.after}, check exit status "
            f"{done.entry['exit_code']}{last}", level, container)
    elif done.probe == status.PROBE_DONE:
        say(f"{container.name}: startup probe passed, regular health checks begin", NOTICE,
            container)
    elif done.probe == status.PROBE_RESTART:
        say(f"{container.name}: startup probe failed "
            f"{done.state['startup']['failures']} times{last}", WARNING, container)


def act(container: Container, spec: dict[str, Any], done: Step) -> None:
    """health_on_failure for an unhealthy container; a restart for a failed startup."""
    if done.probe == status.PROBE_RESTART:
        say(f"{container.name}: restart {container.name}.service", WARNING, container)
        _systemctl(container, "restart")
        return
    if done.after != status.UNHEALTHY or done.passed:
        return
    action = spec.get("on_failure")
    if action == "kill" and container.pid is not None and container.running():
        say(f"{container.name}: unhealthy: killing its init (PID {container.pid})", WARNING,
            container)
        kill(container.pid)
    elif action in ("stop", "restart"):
        if done.before != status.UNHEALTHY:
            say(f"{container.name}: unhealthy: {action} {container.name}.service", WARNING,
                container)
        _systemctl(container, str(action))


def _systemctl(container: Container, verb: str) -> None:
    """`systemctl [--user] --no-block VERB NAME.service`: the job is queued, not awaited
    (it stops this check's own units, bound to the container's)."""
    code = systemctl_no_block(verb, f"{container.name}.service", container.user)
    if code != 0:
        say(f"{container.name}: systemctl {verb} failed with exit status {code}", WARNING,
            container)


def run_check(container: Container, store: dict[str, Any]) -> Step | None:
    """One step, reported and acted on."""
    done = step(container, store)
    if done is not None:
        report(container, done)
        act(container, store["spec"], done)
    return done


def timer_main(name: str, user: bool) -> int:
    """What NAME-healthcheck.service runs: the startup phase (probes every startup
    interval until it ends) or one regular check. Exit 0 whatever the check's result (the
    result is the state; a failing unit would log every failed check); a container that
    stopped meanwhile is no error."""
    container = Container(name, user)
    store = status.load_store(container.bundle)
    if store is None or not container.running():
        return 0
    while True:
        done = run_check(container, store)
        if done is None or done.probe != status.PROBE_AGAIN or not container.running():
            return 0
        time.sleep(float(store["spec"]["startup"]["interval"]))


def check_now(name: str, user: bool) -> Step:
    """`hostctl healthcheck NAME`: one check (or probe) now, recorded like a timer's;
    CannotCheck when the container is not running or has no check."""
    container = Container(name, user)
    container.require_running()
    done = run_check(container, load_store(container))
    if done is None:
        container.require_running()  # stopped while checking
        raise CannotCheck(f"container {name} has no health state",
                          hint="it was started before it had a check: restart it")
    return done
