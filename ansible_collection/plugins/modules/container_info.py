#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.container_info: declared containers and their units' states."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: container_info
short_description: List hostctl containers with their declarations and unit states
description:
  - Every declared container of the scope (or the ones named), with its declaration
    file, image, unit state, main PID and restart count. Changes nothing.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Not applicable.
options:
  name:
    description:
      - Only these containers (all declared ones when left out). A name that is not
        declared is left out of the result.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: What runs on the host
  hostctl.hostctl.container_info:
  register: running

- name: One of alice's containers
  hostctl.hostctl.container_info:
    name: [notes]
    scope: user
    owner: alice
'''

RETURN = r'''
containers:
  description: One entry per declared container, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container's name.
      type: str
    unit:
      description: Its systemd unit.
      type: str
    source:
      description: The declaration file.
      type: str
    image:
      description: The image the declaration names.
      type: str
    active_state:
      description: The unit's ActiveState.
      type: str
    sub_state:
      description: The unit's SubState.
      type: str
    main_pid:
      description: The container's init as seen on the host (0 when not running).
      type: int
    restarts:
      description: How often systemd restarted it.
      type: int
    active_since:
      description: When it became active (seconds since the epoch), or null.
      type: float
    error:
      description: Why the declaration does not load, or null.
      type: str
    labels:
      description: The declaration's labels.
      type: dict
    health:
      description: The health check's status (starting, healthy, unhealthy), or null
        when the container has no check or is not running.
      type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    run_as_owner,
    check_owner,
    require_hostctl,
    scope_of,
)

FIELDS = ('name', 'unit', 'source', 'image', 'active_state', 'sub_state', 'main_pid',
          'restarts', 'active_since', 'error', 'labels', 'health')


def gather(names, scope):
    from hostctl.api.containers import list_containers

    rows = []
    for status in sorted(list_containers(scope), key=lambda row: row.name):
        if names and status.name not in names:
            continue
        rows.append(dict((field, getattr(status, field)) for field in FIELDS))
    return rows


def main():
    spec = dict(name=dict(type='list', elements='str'))
    spec.update(SCOPE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    require_hostctl(module)
    check_owner(module)
    rows = run_as_owner(module, gather, module.params['name'], scope_of(module.params))
    module.exit_json(changed=False, containers=rows)


if __name__ == '__main__':
    main()
