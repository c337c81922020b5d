#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.compose_project: a compose project run as systemd units."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: compose_project
short_description: Run a docker compose project as systemd units with hostctl
description:
  - Installs a compose project where hostctl's generator reads it
    (C(/etc/hostctl/compose/PROJECT), a user's C(~/.config/hostctl/compose/PROJECT)).
    Each service becomes a unit C(PROJECT-SERVICE.service), the project
    C(PROJECT.target), started at boot while the project is installed.
  - The compose files are loaded and translated on the managed host first; a key hostctl
    cannot honour fails the task naming the file, line and key, and nothing is changed.
  - Only services whose declaration changed are restarted; an unchanged project that runs
    is not a change.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
attributes:
  check_mode:
    support: full
    description: Nothing is written, started or stopped; the result says what would be.
  diff_mode:
    support: full
    description: The installed files before and after, as a unified diff.
options:
  project:
    description:
      - The project's name (C(docker compose -p)); its units are named after it.
    type: str
    required: true
  src:
    description:
      - A directory on the managed host holding C(compose.yaml) (or
        C(docker-compose.yml)), its override and C(.env), or one compose file.
      - Relative bind mounts and build contexts resolve against it.
      - One of O(src) and O(definition) is required unless O(state=absent).
    type: path
  definition:
    description:
      - The compose file's content, as a mapping. Relative paths in it resolve against
        the installed project's directory.
    type: dict
  files:
    description:
      - Compose files under O(src) to read, in merge order (C(docker compose -f));
        default the directory's own.
    type: list
    elements: path
  env_files:
    description:
      - Files of variables for interpolation (C(--env-file)); default O(src)'s C(.env).
    type: list
    elements: path
  profiles:
    description:
      - Profiles to enable (C(--profile)); default none.
    type: list
    elements: str
  state:
    description:
      - V(present) installs the project (started at the next boot), V(started) also
        starts it, V(stopped) installs it and stops it, V(restarted) restarts every
        service, V(absent) stops it and removes its units, containers and networks.
    type: str
    choices: [present, absent, started, stopped, restarted]
    default: started
  remove_volumes:
    description:
      - With O(state=absent), remove the project's named volumes too (C(down -v)).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Run the shop project from its checkout
  hostctl.hostctl.compose_project:
    project: shop
    src: /srv/shop

- name: A small project given inline
  hostctl.hostctl.compose_project:
    project: whoami
    definition:
      services:
        web:
          image: registry.example.com/whoami:1
          ports: ["8080:80"]

- name: Remove it, keeping its data
  hostctl.hostctl.compose_project:
    project: shop
    state: absent
'''

RETURN = r'''
actions:
  description: What was done (or, in check mode, would be done).
  returned: always
  type: list
  elements: str
failed_units:
  description: Units that did not start, with their state.
  returned: always
  type: list
  elements: str
ignored:
  description: Compose keys with no meaning on one host, with why.
  returned: always
  type: list
  elements: str
'''

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    check_owner,
    require_hostctl,
    run_as_owner,
    scope_of,
)


def _source(params, scope, scratch):
    from pathlib import Path

    from hostctl.api.compose import Source
    from hostctl.compose.installed import projects_dir
    from hostctl.paths import for_scope

    profiles = tuple(params['profiles']) if params['profiles'] else None
    env_files = tuple(Path(f) for f in params['env_files'] or ())
    if params['definition'] is not None:
        import yaml

        path = os.path.join(scratch, 'compose.yaml')
        with open(path, 'w') as handle:
            yaml.safe_dump(params['definition'], handle, sort_keys=False)
        directory = projects_dir(for_scope(scope)) / params['project']
        return Source(directory, (Path(path),), params['project'], env_files, profiles)
    src = Path(params['src'])
    if src.is_file():
        return Source(None, (src,), params['project'], env_files, profiles)
    files = tuple(src / f for f in params['files'] or ())
    return Source(src, files, params['project'], env_files, profiles)


def ensure(params, scope, check):
    from hostctl.api import compose

    name, state = params['project'], params['state']
    if state == 'absent':
        done = compose.down(name, scope, volumes=params['remove_volumes'], check=check)
        return dict(changed=done.changed, actions=list(done.actions), failed_units=[],
                    ignored=[], diff=dict(prepared=''))
    scratch = tempfile.mkdtemp(prefix='hostctl-compose-')
    try:
        source = _source(params, scope, scratch)
        if check:
            return _would(compose, source, name, scope, state)
        done = compose.up(source, scope, start=state in ('started', 'restarted'))
        actions, changed = list(done.actions), done.changed
        if state == 'restarted':
            compose.control(name, scope, 'RestartUnit')
            actions.append('restart %s.target' % name)
            changed = True
        if state == 'stopped' and compose.stop(name, scope):
            actions.append('stop %s.target' % name)
            changed = True
        return dict(changed=changed, actions=actions, failed_units=list(done.failed),
                    ignored=list(done.ignored), diff=dict(prepared=done.diff))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _would(compose, source, name, scope, state):
    done = compose.up(source, scope, check=True)
    states = compose.unit_states(name, scope)
    actions, changed = list(done.actions), done.changed
    if state == 'started' and (not states or any(s != 'active' for s in states.values())):
        actions.append('start %s.target' % name)
        changed = True
    if state == 'restarted':
        actions.append('restart %s.target' % name)
        changed = True
    if state == 'stopped' and any(s not in ('inactive', 'failed') for s in states.values()):
        actions.append('stop %s.target' % name)
        changed = True
    return dict(changed=changed, actions=actions, failed_units=[], ignored=[],
                diff=dict(prepared=done.diff))


def main():
    spec = dict(
        project=dict(type='str', required=True),
        src=dict(type='path'),
        definition=dict(type='dict'),
        files=dict(type='list', elements='path'),
        env_files=dict(type='list', elements='path'),
        profiles=dict(type='list', elements='str'),
        state=dict(type='str', default='started',
                   choices=['present', 'absent', 'started', 'stopped', 'restarted']),
        remove_volumes=dict(type='bool', default=False),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=spec, supports_check_mode=True,
        mutually_exclusive=[('src', 'definition')],
        required_if=[('state', 'present', ('src', 'definition'), True),
                     ('state', 'started', ('src', 'definition'), True),
                     ('state', 'stopped', ('src', 'definition'), True),
                     ('state', 'restarted', ('src', 'definition'), True)],
    )
    require_hostctl(module)
    check_owner(module)
    result = run_as_owner(module, ensure, module.params, scope_of(module.params),
                          module.check_mode)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
