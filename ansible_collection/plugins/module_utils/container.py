"""The container module's work: declaration, image, enablement and running state.

ensure() runs on the managed host (as the container's owner for scope user) and returns a
plain dict: the module's result. Each step says whether it changed something and what
it did; in check mode every step only looks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

from ansible_collections.hostctl.hostctl.plugins.module_utils import images
from ansible_collections.hostctl.hostctl.plugins.module_utils.container_settings import (
    SETTING_KEYS,
)

RUNNING = ('active', 'activating', 'reloading')
REFRESHING_POLICIES = ('always', 'newer')


def declaration_of(params):
    """The declaration mapping: the settings given, in the settings table's order."""
    return dict((key, params[key]) for key in SETTING_KEYS if params.get(key) is not None)


class Step(object):
    """Accumulates what a run did (or would do) and the result to return."""

    def __init__(self, name, scope, check):
        self.name = name
        self.unit = '%s.service' % name
        self.scope = scope
        self.check = check
        self.changed = False
        self.actions = []
        self.warnings = []

    def did(self, *actions):
        self.changed = True
        self.actions.extend(actions)


def unit_state(scope, unit):
    """ActiveState of UNIT ("inactive" for a unit systemd does not know)."""
    from hostctl.systemd.dbus import active_state

    return active_state(unit, scope)


def _ensure_enabled(step, enabled, declaration, declared, reload=True):
    """Enable or disable at boot; DECLARED: the declaration is already on disk (in check
    mode a new one is not, so the drop-in that would be written is only looked for).
    RELOAD=False: the caller reloads systemd once for several containers."""
    from hostctl.api.containers import enable_dropin, set_enabled

    if enabled is None or (enabled and declaration.get('install')):
        return
    if declared:
        result = set_enabled(step.name, enabled, step.scope, check=step.check, reload=reload)
        changed = result.changed
    else:
        changed = enable_dropin(step.name, step.scope).exists() != enabled
    if changed:
        step.did('%s %s' % ('enable' if enabled else 'disable', step.unit))


def image_key(declaration):
    """What decides an image refresh's outcome: the same for containers sharing an image."""
    return (declaration['image'], declaration.get('pull'), declaration.get('platform'))


def _ensure_image(step, declaration, refreshed=None):
    """Under pull always/newer, a newer image in the registry is a change (and a restart).
    REFRESHED: outcomes by image_key already had (several containers, one image: one pull)."""
    policy = declaration.get('pull')
    if policy not in REFRESHING_POLICIES:
        return False
    key = image_key(declaration)
    if refreshed is None or key not in refreshed:
        outcome = images.refresh(declaration['image'], step.scope, policy, step.check,
                                 declaration.get('platform'))
        if refreshed is not None:
            refreshed[key] = outcome
    else:
        outcome = refreshed[key]
    changed, before, after, warning = outcome
    if warning:
        step.warnings.append(warning)
    if changed:
        step.did('pull %s (%s -> %s)' % (declaration['image'], before or 'none', after))
    return changed


def unit_method(state, active, restart):
    """The systemd job STATE needs (StartUnit, StopUnit, RestartUnit) or None.

    ACTIVE: the unit's ActiveState; RESTART: its declaration or image changed, or a
    restart was forced. A changed container that is not running is not started by
    present (nor by stopped): it runs the new declaration at its next start.
    """
    running = active in RUNNING
    if state == 'stopped':
        return 'StopUnit' if running else None
    if state == 'restarted' or (restart and running):
        return 'RestartUnit'
    if state == 'started' and not running:
        return 'StartUnit'
    return None


def declare(params, scope, check, reload=True):
    """Write NAME's declaration and enable drop-in as PARAMS say (RELOAD=False: without
    the daemon-reload, which the caller does once); (step, applied, declaration)."""
    from hostctl.api.containers import apply

    name, state = params['name'], params['state']
    step = Step(name, scope, check)
    declaration = declaration_of(params)
    applied = apply(name, declaration, scope=scope, check=check, start=False, reload=reload)
    if applied.changed:
        step.did(*applied.actions)
    enabled = params['enabled']
    if enabled is None and state in ('started', 'restarted'):
        enabled = True
    _ensure_enabled(step, enabled, declaration,
                    declared=not check or applied.before is not None, reload=reload)
    return step, applied, declaration


def needs_state(applied):
    """Whether the unit's ActiveState must still be asked for (apply() did not say)."""
    return applied.unit_state is None and applied.before is not None


def running_method(params, step, applied, image_changed, active):
    """The job NAME's unit needs (see unit_method), recorded in STEP's actions. ACTIVE:
    its ActiveState, when needs_state(APPLIED); else what apply() said or 'inactive'."""
    if not needs_state(applied):
        active = applied.unit_state if applied.unit_state is not None else 'inactive'
    restart = params['force_restart'] or image_changed or (
        applied.changed and applied.before is not None)
    method = unit_method(params['state'], active, restart)
    if method is not None:
        step.did('%s %s' % (method[:-len('Unit')].lower(), step.unit))
    return method


def wrote(step):
    """Whether STEP wrote a declaration or drop-in (its actions ask for a daemon-reload)."""
    return 'daemon-reload' in step.actions


def ensure_present(params, scope, check):
    """Declare, enable, refresh and run container NAME as PARAMS say: the declaration and
    its enable drop-in written first, then one daemon-reload for both."""
    from hostctl.api.containers import control, reload_units

    step, applied, declaration = declare(params, scope, check, reload=False)
    if wrote(step) and not check:
        step.warnings.extend(reload_units(scope))
    image_changed = _ensure_image(step, declaration)
    active = unit_state(scope, step.unit) if needs_state(applied) else None
    method = running_method(params, step, applied, image_changed, active)
    if method is not None and not check:
        control(step.name, method, scope)
    return _result(step, applied, declaration['image'])


def _result(step, applied, image, states=None):
    """The module's result for one container; STATES: ActiveStates already asked for."""
    result = dict(
        changed=step.changed, actions=step.actions, warnings=step.warnings,
        unit=step.unit, path=str(applied.path), declaration=applied.after,
        diff=dict(before=applied.before or '', after=applied.after or '',
                  before_header=str(applied.path), after_header=str(applied.path)),
    )
    if step.check and step.changed:
        result['unit_state'] = None
        result['image_digest'] = None
        return result
    unchanged = not step.changed and applied.unit_state is not None
    if unchanged:
        result['unit_state'] = applied.unit_state
    elif states is not None:
        result['unit_state'] = states.get(step.unit, 'inactive')
    else:
        result['unit_state'] = unit_state(step.scope, step.unit)
    result['image_digest'] = images.stored_digest(image, step.scope)
    return result


def ensure_absent(params, scope, check):
    """Stop NAME and delete its declaration (and, with remove_volumes, its named volumes)."""
    from hostctl.api.containers import remove

    step = Step(params['name'], scope, check)
    removed = remove(step.name, scope=scope, check=check)
    if removed.changed:
        step.did(*removed.actions)
    if params['remove_volumes'] and removed.before is not None:
        _remove_volumes(step, removed)
    return dict(changed=step.changed, actions=step.actions, warnings=step.warnings,
                unit=step.unit, path=str(removed.path), declaration=None,
                unit_state=None if check else 'inactive', image_digest=None,
                diff=dict(before=removed.before or '', after='',
                          before_header=str(removed.path), after_header=str(removed.path)))


def named_volumes(name, text, path):
    """The named volumes (not bind mounts) the declaration TEXT of NAME uses."""
    from hostctl.api.containers import validate
    from hostctl.declarations.model import VolumeKind

    container = validate(name, text, path)
    return [v.source for v in container.volumes if v.kind is VolumeKind.VOLUME]


def _volumes_in_use(step):
    """Named volumes other declared containers of the scope still use."""
    from hostctl.declarations.search import declaration_dirs, load_file, scan_declarations
    from hostctl.errors import HostctlError

    dirs = declaration_dirs(step.scope)
    used = set()
    for other, path in scan_declarations(step.scope, dirs).found.items():
        if other == step.name:
            continue
        try:
            container = load_file(path, other, dirs)
        except HostctlError:
            continue
        used.update(v.source for v in container.volumes if v.kind.value == 'volume')
    return used


def _remove_volumes(step, removed):
    from hostctl.paths import for_scope

    root = os.path.join(str(for_scope(step.scope).state), 'volumes')
    in_use = _volumes_in_use(step)
    for volume in named_volumes(step.name, removed.before, removed.path):
        where = os.path.join(root, volume)
        if volume in in_use:
            step.warnings.append('kept volume %s: another container uses it' % volume)
        elif os.path.isdir(where):
            step.did('delete volume %s' % where)
            if not step.check:
                shutil.rmtree(where)


def ensure(params, scope, check):
    """The whole task: absent, or present/started/stopped/restarted."""
    if params['state'] == 'absent':
        return ensure_absent(params, scope, check)
    return ensure_present(params, scope, check)
