#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.container: a declared container, idempotently."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: container
short_description: Declare, run, stop or remove a hostctl container
description:
  - Writes the container's declaration (C(/etc/hostctl/containers/NAME.yaml), or the
    user's C(~/.config/hostctl/containers/NAME.yaml)), reloads systemd when it changed,
    and brings the unit C(NAME.service) to the requested state. hostctl runs the container
    as that systemd service; there is no daemon.
  - Every declaration key of hostctl is an option with the same name and meaning; an
    option left out is a key left out of the declaration (hostctl's default applies).
  - Idempotent. The task reports a change only when the declaration, the enabled state,
    the image (with O(pull=always) or O(pull=newer), by digest) or the running state had
    to change, and restarts the unit only when its declaration or image changed.
  - In check mode nothing on the host changes (no pull, no file, no reload, no
    restart); the result says what would be done. With C(--diff) the declaration before
    and after is shown.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
  - hostctl.hostctl.container_settings
attributes:
  check_mode:
    support: full
    description: Nothing on the host changes; the registry is asked for a digest only.
  diff_mode:
    support: full
    description: The declaration's text before and after.
options:
  name:
    description:
      - The container's name; the unit is C(NAME.service).
      - Required unless O(containers) is given (and mutually exclusive with it).
    type: str
  containers:
    description:
      - Several containers in one task. Each element is a dictionary of this module's
        options for one container (O(name), O(state), O(image) and the other declaration
        keys, O(enabled), O(scope), ...); an option given to the task itself applies to
        every element that does not set it.
      - Every element is checked first; each container is decided, changed and restarted
        exactly as a task of its own would be, and the result lists them under
        RV(containers). The work is batched per O(scope) and O(owner), in this order;
        every declaration and enable drop-in is written, systemd is reloaded once, each
        image that a start needs and the store lacks is pulled once (several images at
        once; for O(scope=system)), and the start, stop and restart jobs are queued
        together and waited for together, so the containers start in parallel.
      - One task for many containers spares Ansible's per-task round trip to the host for
        each of them, and a first deploy the reloads, pulls and waits of each.
    type: list
    elements: dict
  state:
    description:
      - V(present) declares the container without starting or stopping it (a running one
        is restarted when its declaration or image changed).
      - V(started) declares it and makes sure it runs.
      - V(stopped) declares it and makes sure it does not run.
      - V(restarted) declares it and restarts it (always a change).
      - V(absent) stops it and removes its declaration.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
  enabled:
    description:
      - Start the container at boot (with O(scope=user), when the user's manager starts).
      - When not given, V(true) for O(state=started) and O(state=restarted), and left as it
        is otherwise.
    type: bool
  force_restart:
    description:
      - Restart a running container even when nothing changed.
    type: bool
    default: false
  remove_volumes:
    description:
      - With O(state=absent), also delete the named volumes the declaration used (bind
        mounts are never touched; a volume another container uses is kept).
    type: bool
    default: false
notes:
  - A container that fails to start fails the task with the unit's last journal lines.
  - A bad option value fails the task naming the key and what is allowed.
seealso:
  - module: hostctl.hostctl.container_info
  - module: hostctl.hostctl.image
'''

EXAMPLES = r'''
- name: Run a web server, started at boot
  hostctl.hostctl.container:
    name: web
    image: docker.io/library/nginx:1.27
    network: host
    env:
      TZ: UTC
    memory: 256M
    restart: on-failure

- name: Follow the image's tag (pull when the registry has a newer digest, then restart)
  hostctl.hostctl.container:
    name: web
    image: docker.io/library/nginx:1.27
    pull: newer

- name: A rootless container of alice's, running when her manager starts
  hostctl.hostctl.container:
    name: notes
    image: registry.example.com/notes:2
    scope: user
    owner: alice

- name: Ten containers in one task (an option of the task applies to each)
  hostctl.hostctl.container:
    network: host
    restart: on-failure
    containers:
      - name: web
        image: docker.io/library/nginx:1.27
      - name: cache
        image: docker.io/library/redis:7
        memory: 512M
      - name: old-worker
        state: absent

- name: Remove it and its named volumes
  hostctl.hostctl.container:
    name: web
    state: absent
    remove_volumes: true
'''

RETURN = r'''
declaration:
  description: The declaration's YAML text after the task (null when absent).
  returned: when O(name) is given
  type: str
  sample: "image: docker.io/library/nginx:1.27\nnetwork: host\n"
path:
  description: The declaration file.
  returned: when O(name) is given
  type: str
  sample: /etc/hostctl/containers/web.yaml
unit:
  description: The systemd unit that runs the container.
  returned: when O(name) is given
  type: str
  sample: web.service
unit_state:
  description: The unit's ActiveState after the task (null in check mode when something
    would change).
  returned: when O(name) is given
  type: str
  sample: active
image_digest:
  description: The digest of the stored image the declaration names (null when not
    stored yet or absent).
  returned: when O(name) is given
  type: str
  sample: sha256:5d7d1e2b3c...
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: when O(name) is given
  type: list
  elements: str
  sample: ["write /etc/hostctl/containers/web.yaml", "daemon-reload", "start web.service"]
containers:
  description:
    - With O(containers), each container's result in the order given, as a task of its
      own would return it (RV(declaration), RV(path), RV(unit), RV(unit_state),
      RV(image_digest), RV(actions)) and its C(name). With C(--diff), the
      task's diff lists each container's declaration before and after.
  returned: when O(containers) is given
  type: list
  elements: dict
  sample: [{"name": "web", "unit": "web.service", "unit_state": "active", "actions": []}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_required_if

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    OwnerError,
    HostctlError,
    as_owner,
    error_result,
    run_as_owner,
    check_owner,
    owner_problem,
    require_hostctl,
    scope_of,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.container_settings import (
    SETTINGS_ARGUMENT_SPEC,
)


# A container that is declared needs its image (for `containers`, checked per element).
REQUIRED_IF = [('state', state, ['image'])
               for state in ('present', 'started', 'stopped', 'restarted')]


def container_spec():
    """The options of one container (the task's, or one element of `containers`)."""
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='started',
                   choices=['present', 'started', 'stopped', 'restarted', 'absent']),
        enabled=dict(type='bool'),
        force_restart=dict(type='bool', default=False),
        remove_volumes=dict(type='bool', default=False),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    spec.update(SETTINGS_ARGUMENT_SPEC)
    return spec


def argument_spec():
    spec = container_spec()
    spec['name'] = dict(type='str')
    spec['containers'] = dict(type='list', elements='dict')
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[('name', 'containers')],
        required_one_of=[('name', 'containers')],
        supports_check_mode=True,
    )
    require_hostctl(module)
    if module.params['containers'] is None:
        one(module)
    else:
        several(module)


def one(module):
    try:
        check_required_if(REQUIRED_IF, module.params)
    except TypeError as error:
        module.fail_json(msg=str(error))
    check_owner(module)
    from ansible_collections.hostctl.hostctl.plugins.module_utils.container import ensure

    result = run_as_owner(module, ensure, module.params, scope_of(module.params), module.check_mode)
    for warning in result.pop('warnings'):
        module.warn(warning)
    if not module._diff:
        result.pop('diff')
    module.exit_json(**result)


def several(module):
    """The elements of `containers`, batched per scope and owner (module_utils.deploy:
    one daemon-reload, each image pulled once, the jobs queued together); the first
    failure fails the task, with the results of the containers before it."""
    from ansible_collections.hostctl.hostctl.plugins.module_utils.batch import (
        BatchError,
        element_params,
    )
    from ansible_collections.hostctl.hostctl.plugins.module_utils.deploy import ensure_many

    try:
        tasks = element_params(module.params, module.params['containers'], container_spec(),
                               REQUIRED_IF)
    except BatchError as error:
        module.fail_json(msg=str(error))
    for params in tasks:
        if owner_problem(params):
            module.fail_json(msg='%s: %s' % (params['name'], owner_problem(params)))
    groups = {}  # (scope, owner) -> indexes of its elements, in order
    for index, params in enumerate(tasks):
        groups.setdefault((params['scope'], params.get('owner')), []).append(index)
    done = {}  # index -> result
    for (_scope, owner), indexes in groups.items():
        group = [tasks[index] for index in indexes]
        try:
            results, failure = as_owner(owner, ensure_many, group, scope_of(group[0]),
                                        module.check_mode)
        except (HostctlError, OwnerError) as error:
            _fail(module, tasks, done, group[0]['name'], error)
        done.update(zip(indexes, results))
        if failure is not None:
            name, message, where, hint = failure
            _fail(module, tasks, done, name, HostctlError(message, where=where, hint=hint))
    results, diffs = [], []
    for index, params in enumerate(tasks):
        result = done[index]
        for warning in result.pop('warnings'):
            module.warn('%s: %s' % (params['name'], warning))
        diffs.append(result.pop('diff'))
        result['name'] = params['name']
        results.append(result)
    outcome = dict(changed=any(r['changed'] for r in results), containers=results)
    if module._diff:
        outcome['diff'] = diffs
    module.exit_json(**outcome)


def _fail(module, tasks, done, name, error):
    """Fail the task for container NAME's ERROR, with the results DONE (by index)."""
    failure = error_result(error) if isinstance(error, HostctlError) else dict(msg=str(error))
    failure['msg'] = '%s: %s' % (name, failure['msg'])
    results = []
    for index in sorted(done):
        result = dict(done[index], name=tasks[index]['name'])
        result.pop('warnings', None)
        result.pop('diff', None)
        results.append(result)
    module.fail_json(changed=any(r['changed'] for r in results), containers=results,
                     **failure)


if __name__ == '__main__':
    main()
