"""The kube module's work: a Kubernetes YAML app played, or down, idempotently.

ensure() runs on the managed host (as the owner for scope user) and returns the module's
result as a plain dict; in check mode nothing is written, started or stopped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os


class KubeOptionError(Exception):
    """The task's options do not name one app."""


def app_of(params):
    """The app's name: O(name), else the stem of O(src) (as `hostctl kube play` names it)."""
    src, name = params.get('src'), params.get('name')
    stem = None
    if src:
        base = os.path.basename(src)
        stem = base.rsplit('.', 1)[0] if '.' in base else base
    if name and stem and name != stem:
        raise KubeOptionError('name %s differs from the app src plays as (%s, its file '
                              'name without the suffix): leave out name, or rename the file'
                              % (name, stem))
    if not (name or stem):
        raise KubeOptionError('give src (a file on the host) or name (with definition)')
    return name or stem


def definition_text(definition):
    """O(definition) as YAML text: a string as written, a mapping as one document, a list
    as one document per element."""
    import yaml

    if isinstance(definition, str):
        return definition if definition.endswith('\n') else definition + '\n'
    if isinstance(definition, list):
        return yaml.safe_dump_all(definition, sort_keys=False, default_flow_style=False)
    return yaml.safe_dump(definition, sort_keys=False, default_flow_style=False)


def diff_of(change):
    """Ansible's diff: one before/after per file that differs."""
    return [dict(before=before, after=after, before_header=path, after_header=path)
            for path, before, after in change.diffs]


def ensure(params, scope, check):
    """Play the app (state present) or take it down (absent)."""
    from pathlib import Path

    from hostctl.api import kube_apply
    from hostctl.api.kube import systemd_act

    app = app_of(params)
    act = None if check else systemd_act(scope)
    definition = params.get('definition')
    if params['src']:
        path = Path(params['src'])
    else:
        path = kube_apply.definition_path(app, scope)
    if params['state'] == 'absent':
        change = kube_apply.remove(path, scope, volumes=params['remove_volumes'], check=check,
                                   act=act)
    else:
        configmaps = [Path(p) for p in params.get('configmaps') or ()]
        text = definition_text(definition) if definition is not None else None
        change = kube_apply.apply([path], scope, definition=text, configmaps=configmaps,
                                  check=check, act=act)
    return dict(changed=change.changed, actions=list(change.actions), app=change.app,
                units=list(change.units), files=sorted(change.after), diff=diff_of(change))
