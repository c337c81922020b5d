"""Several containers of one scope and owner at once: the container module's `containers`.

A first deploy of ten containers one by one costs ten daemon-reloads (twenty with the
enable drop-ins), ten pulls of the same image racing in ten launchers, and ten starts
waited for in turn. Here every declaration and drop-in is written first, systemd is
reloaded once, each image that a start needs and the store lacks is pulled once (images
in parallel), and the start, stop and restart jobs are queued together and waited for
together. Check mode, diff and each container's result are as for one container
(module_utils.container); a pull or a job that fails fails the containers it concerns.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hostctl.hostctl.plugins.module_utils import images
from ansible_collections.hostctl.hostctl.plugins.module_utils.container import (
    _ensure_image,
    _result,
    declare,
    ensure_absent,
    needs_state,
    running_method,
    wrote,
)

PULLS_AT_ONCE = 4
STARTING = ('StartUnit', 'RestartUnit')


def ensure_many(tasks, scope, check):
    """(results, failure) for TASKS (each a container's validated params): the results in
    their order, or, when a container failed, those of the containers before the first
    that did and that one's failure (name, message, where, hint). Plain data, so that it
    comes back from a process working as the owner (module_utils.common.as_owner)."""
    from hostctl.errors import HostctlError

    results = {}
    present = []
    failures = {}
    for params in tasks:
        if params['state'] != 'absent':
            present.append(params)
            continue
        try:
            results[params['name']] = ensure_absent(params, scope, check)
        except HostctlError as error:
            failures[params['name']] = error
            break
    if present and not failures:
        results.update(_ensure_present(present, scope, check, failures))
    for params in tasks:
        error = failures.get(params['name'])
        if error is not None:
            failure = (params['name'], error.message, error.where, error.hint)
            return _before(tasks, results, params['name']), failure
    return [results[params['name']] for params in tasks], None


def _before(tasks, results, name):
    done = []
    for params in tasks:
        if params['name'] == name:
            break
        if params['name'] in results:
            done.append(results[params['name']])
    return done


def _ensure_present(tasks, scope, check, failures):
    """Declare all, reload once, refresh images once each, pull once, run jobs together."""
    from hostctl.api.containers import reload_units
    from hostctl.errors import HostctlError

    declared = []
    for params in tasks:  # a declaration that does not validate stops here, as one by one
        try:
            declared.append((params,) + declare(params, scope, check, reload=False))
        except HostctlError as error:
            failures[params['name']] = error
            break
    if any(wrote(entry[1]) for entry in declared) and not check:
        for note in reload_units(scope):
            declared[0][1].warnings.append(note)
    refreshed = {}
    plans = []
    for params, step, applied, declaration in declared:
        try:
            image_changed = _ensure_image(step, declaration, refreshed)
        except HostctlError as error:  # pull: always and the registry failed
            failures[step.name] = error
            continue
        plans.append((params, step, applied, declaration, image_changed))
    states = _states(scope, [plan[1].unit for plan in plans if needs_state(plan[2])])
    jobs = []
    for params, step, applied, declaration, image_changed in plans:
        method = running_method(params, step, applied, image_changed,
                                states.get(step.unit, 'inactive'))
        if method is not None:
            jobs.append((method, step, declaration))
    if not check:
        _pull_missing(scope, [j for j in jobs if j[0] in STARTING], failures)
        _run_jobs(scope, [j for j in jobs if j[1].name not in failures], failures)
    after = None if check else _states(scope, [plan[1].unit for plan in plans
                                               if plan[1].changed])
    results = {}
    for params, step, applied, declaration, _changed in plans:
        if step.name not in failures:
            results[step.name] = _result(step, applied, declaration['image'], after)
    return results


def _states(scope, units):
    """ActiveState of each of UNITS, in one call ({} for none)."""
    from hostctl.systemd.dbus import Systemd

    if not units:
        return {}
    return dict((unit, state[0]) for unit, state in Systemd(scope).states(units).items())


def _pull_missing(scope, jobs, failures):
    """Pull once each image (of pull policy missing, the default) that a start of JOBS
    needs and the store lacks, several images at once; a failed pull fails the containers
    that need it. A user's images are left to the launchers: a user's pull enters a user
    namespace, which a process running threads cannot."""
    from concurrent.futures import ThreadPoolExecutor

    from hostctl.errors import HostctlError
    from hostctl.paths import Scope

    if scope is not Scope.SYSTEM:
        return
    wanted = {}
    for _method, step, declaration in jobs:
        if declaration.get('pull') not in (None, 'missing'):
            continue  # always/newer: refreshed already; never: the store's or nothing
        key = (declaration['image'], declaration.get('platform'))
        wanted.setdefault(key, []).append(step)
    missing = [key for key in wanted if images.stored_digest(key[0], scope) is None]

    def pull(key):
        try:
            images.pull(key[0], scope, key[1], policy='missing')
            return None
        except HostctlError as error:
            return error

    with ThreadPoolExecutor(max_workers=PULLS_AT_ONCE) as pool:
        for key, error in zip(missing, pool.map(pull, missing)):
            wanted[key][0].actions.append('pull %s' % key[0])  # once, for the first
            for step in wanted[key]:
                if error is not None:
                    failures[step.name] = error


def _run_jobs(scope, jobs, failures):
    """Queue every job at once and wait for all; a job that did not end "done" fails its
    container with the unit's result and last journal lines (as for one container)."""
    from hostctl.api.containers import job_failure
    from hostctl.systemd.dbus import Systemd

    if not jobs:
        return
    systemd = Systemd(scope)
    outcome = systemd.run_jobs([(job[0], job[1].unit) for job in jobs])
    for job in jobs:
        step = job[1]
        if outcome.get(step.unit) != 'done':
            failures[step.name] = job_failure(systemd, step.unit, outcome.get(step.unit),
                                              scope)
