"""systemd's manager through `systemctl` and sd-bus, for the verbs whose time a user
waits for (`hostctl compose up`): no pydbus, no GLib main loop, no introspection.

Systemd (hostctl.systemd.dbus) costs a pydbus import and a proxy of the manager built
from its introspection before the first call (30-60 ms on a loaded host). Here a reload
and jobs are one `systemctl` each: it queues every job of a call at once and waits for
all of them (as Systemd.run_jobs does), and the units' states are one ListUnitsByNames
through sd-bus (hostctl.systemd.dbus.unit_states). The methods have Systemd's names and
meanings, so the API's code runs on either.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from hostctl.errors import HostctlError
from hostctl.paths import Scope

# Manager method -> systemctl verb (each waits for its jobs unless --no-block)
VERBS = {"StartUnit": "start", "StopUnit": "stop", "RestartUnit": "restart",
         "TryRestartUnit": "try-restart"}
# systemctl's messages for a job that ran and did not end "done" ("Job for X failed
# because...", "A dependency job for X failed...")
JOB_FAILED = "job for "


class Systemctl:
    """One systemd manager (system or a user's), as Systemd's reload, run_job(s) and
    states."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.argv = [shutil.which("systemctl") or "systemctl", "--no-ask-password"]
        if scope is Scope.USER:
            from hostctl.systemd.dbus import _session_bus_address

            _session_bus_address()
            self.argv.append("--user")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([*self.argv, *args], capture_output=True, text=True,
                                  check=False, stdin=subprocess.DEVNULL)
        except OSError as err:
            raise HostctlError(f"cannot run systemctl: {err}",
                               hint="hostctl needs systemd's systemctl") from None

    def reload(self) -> None:
        """daemon-reload: re-run the generators and reload every unit file (waits)."""
        done = self._run("daemon-reload")
        if done.returncode != 0:
            raise HostctlError(f"daemon-reload: {done.stderr.strip() or done.returncode}")

    def run_job(self, method: str, unit: str) -> str:
        """METHOD (StartUnit, StopUnit, RestartUnit, TryRestartUnit) on UNIT, waited for:
        "done", or "failed" (the job ran and did not succeed)."""
        return self.run_jobs([(method, unit)])[unit]

    def run_jobs(self, jobs: Sequence[tuple[str, str]]) -> dict[str, str]:
        """Every (METHOD, UNIT) of JOBS, those of one method queued at once and waited
        for together: each unit's "done" or "failed". A unit systemd refuses a job for
        (not found, ...) raises, naming it."""
        results: dict[str, str] = {}
        for method in dict.fromkeys(method for method, _ in jobs):
            units = [unit for each, unit in jobs if each == method]
            done = self._run(VERBS[method], "--job-mode=replace", *units)
            if done.returncode == 0:
                results.update(dict.fromkeys(units, "done"))
                continue
            said = done.stderr.lower()
            if JOB_FAILED not in said:
                raise HostctlError(f"{method} {' '.join(units)}: "
                                   f"{done.stderr.strip() or done.returncode}")
            failed = {unit for unit in units if f"{JOB_FAILED}{unit.lower()} " in said}
            results.update({unit: "failed" if unit in failed else "done" for unit in units})
        return results

    def states(self, units: Sequence[str]) -> dict[str, tuple[str, str]]:
        """UNITS' (ActiveState, SubState), as Systemd.states, through sd-bus."""
        from hostctl.systemd.dbus import unit_states

        return unit_states(units, self.scope)
