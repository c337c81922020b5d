"""The network, volume and pod modules' work: their declaration file, idempotently.

ensure() runs on the managed host (as the owner for scope user) and returns the module's
result as a plain dict; in check mode nothing is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def declaration_of(params, keys):
    """The declaration mapping: the keys given, in the table's order."""
    return dict((key, params[key]) for key in keys if params.get(key) is not None)


def ensure(kind, params, keys, scope, check):
    """Declare (state present) or remove (absent) network or volume NAME."""
    from hostctl.api.resources import Resource, apply, remove

    resource = Resource(kind)
    if params['state'] == 'absent':
        done = remove(resource, params['name'], scope=scope, check=check)
    else:
        done = apply(resource, params['name'], declaration_of(params, keys), scope=scope,
                     check=check)
    return result_of(done)


def result_of(done):
    """The module result of an ApplyResult (the declaration before and after as diff)."""
    return dict(
        changed=done.changed, actions=list(done.actions), warnings=list(done.notes),
        path=str(done.path), declaration=done.after,
        diff=dict(before=done.before or '', after=done.after or '',
                  before_header=str(done.path), after_header=str(done.path)),
    )


def run(module, kind, keys, work=ensure):
    """The whole task of the network, volume or pod MODULE: WORK(kind, params, keys,
    scope, check) as the owner."""
    from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
        check_owner,
        run_as_owner,
        scope_of,
    )

    check_owner(module)
    result = run_as_owner(module, work, kind, module.params, keys,
                          scope_of(module.params), module.check_mode)
    for warning in result.pop('warnings'):
        module.warn(warning)
    if not module._diff:
        result.pop('diff')
    module.exit_json(**result)
