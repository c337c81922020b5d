"""The pod module's work: the pod's declaration and its unit's running state.

ensure() runs on the managed host (as the owner for scope user) and returns the module's
result as a plain dict; in check mode nothing is written, started or stopped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hostctl.hostctl.plugins.module_utils.container import unit_method
from ansible_collections.hostctl.hostctl.plugins.module_utils.resources import (
    declaration_of,
    result_of,
)


def running_method(state, active, existed, changed):
    """The job the pod's unit needs: as a container's (unit_method), a changed pod that
    runs restarts (its members restart with it); a new pod is not running yet."""
    return unit_method(state, active, changed and existed)


def ensure(kind, params, keys, scope, check):
    """Declare pod NAME and bring its unit to the state asked for, or stop and remove it
    (state absent: remove() stops the unit first, and the members with it)."""
    from hostctl.api.containers import control_unit
    from hostctl.api.resources import Resource, apply, remove, unit_of
    from hostctl.systemd.dbus import active_state

    resource = Resource(kind)
    if params['state'] == 'absent':
        done = remove(resource, params['name'], scope=scope, check=check)
        result = result_of(done)
        result.update(unit=unit_of(resource, params['name'], scope, done.before or ''),
                      unit_state=None if check else 'inactive')
        return result
    done = apply(resource, params['name'], declaration_of(params, keys), scope=scope,
                 check=check)
    result = result_of(done)
    unit = unit_of(resource, params['name'], scope, done.after)
    existed = done.before is not None
    active = active_state(unit, scope) if existed or not check else 'inactive'
    method = running_method(params['state'], active, existed, done.changed)
    if method is not None:
        result['changed'] = True
        result['actions'].append('%s %s' % (method[:-len('Unit')].lower(), unit))
        if not check:
            control_unit(unit, method, scope)
    result['unit'] = unit
    if check:
        result['unit_state'] = None if result['changed'] else active
    else:
        result['unit_state'] = active_state(unit, scope) if method else active
    return result
