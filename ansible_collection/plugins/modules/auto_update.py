#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.auto_update: hostctl auto-update on a host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: auto_update
short_description: Update running hostctl containers that declare auto_update, with rollback
description:
  - For each running container whose declaration has C(auto_update), compares the image it
    runs with the registry's (V(registry)) or the store's (V(local)) for its reference, and
    when they differ pulls the new image, restarts the unit and judges it. A container that
    does not start, exits within O(grace) seconds or is not healthy in time is put back on
    its previous image (with O(rollback)) and restarted again.
  - The image an update replaced stays pinned in the store (image prune keeps it), and a
    release that was rolled back is not tried again until the registry offers another one.
  - Units that required or were bound to an updated container and were active are started
    again afterwards.
  - Same as C(hostctl auto-update); in check mode nothing is pulled, restarted or written
    and the containers that would be updated are reported as V(pending).
version_added: 0.2.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
attributes:
  check_mode:
    support: full
    description: The registry (or store) is asked; nothing is pulled, restarted or written.
  diff_mode:
    support: none
    description: Not applicable.
options:
  names:
    description:
      - Only these containers. A named container that is not running or has no
        C(auto_update) is reported (a stopped one as V(failed)) instead of skipped.
      - Default every running container of the scope that declares C(auto_update).
    type: list
    elements: str
    default: []
  rollback:
    description:
      - Put the previous image back when an updated container fails.
    type: bool
    default: true
  grace:
    description:
      - Seconds an updated container must keep running to count as updated (one with a
        health check must also become healthy).
    type: float
    default: 10
  fail_on_error:
    description:
      - Fail the task when any container's update failed (the results are returned either
        way). With V(false) the task reports the failures in RV(results) only.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Update the fleet's containers, rolling back what does not come up
  hostctl.hostctl.auto_update:

- name: What would be updated (nothing changes)
  hostctl.hostctl.auto_update:
  check_mode: true
  register: pending

- name: One user's containers, without rollback
  hostctl.hostctl.auto_update:
    scope: user
    owner: alice
    names: [web]
    rollback: false
'''

RETURN = r'''
results:
  description: One entry per container considered.
  returned: always
  type: list
  elements: dict
  contains:
    unit:
      description: The container's unit.
      type: str
      sample: web.service
    container:
      description: The container's name.
      type: str
    image:
      description: The image reference it is declared with.
      type: str
    policy:
      description: Its auto_update policy, V(registry) or V(local) (empty when it has none).
      type: str
    updated:
      description: V(true), V(false), V(pending) (check mode), V(failed) or V(rolled back).
      type: str
    running_digest:
      description: This platform's image manifest it ran before.
      type: str
    available_digest:
      description: The one the registry or store offered.
      type: str
    digest:
      description: The one it runs after the task.
      type: str
    reason:
      description: Why it failed, was rolled back or was skipped (empty otherwise).
      type: str
    dependents:
      description: Units started again after the restart.
      type: list
      elements: str
    dependents_failed:
      description: Dependent units that did not start again.
      type: list
      elements: str
updated:
  description: Names of the containers updated (or, in check mode, to be updated).
  returned: always
  type: list
  elements: str
rolled_back:
  description: Names of the containers put back on their previous image.
  returned: always
  type: list
  elements: str
failed_containers:
  description: Names of the containers whose update failed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    run_as_owner,
    check_owner,
    require_hostctl,
    scope_of,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.updates import (
    failure_message,
    summary,
)


def update(params, scope, check):
    """Run auto-update; the rows as plain data (they cross a process boundary for owner)."""
    from hostctl.api.update import auto_update

    rows = auto_update(params['names'], scope=scope, dry_run=check,
                       rollback=params['rollback'], grace=params['grace'])
    return [row.as_json() for row in rows]


def main():
    spec = dict(
        names=dict(type='list', elements='str', default=[]),
        rollback=dict(type='bool', default=True),
        grace=dict(type='float', default=10),
        fail_on_error=dict(type='bool', default=True),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    require_hostctl(module)
    check_owner(module)
    rows = run_as_owner(module, update, module.params, scope_of(module.params),
                        module.check_mode)
    result = summary(rows, module.check_mode)
    if result['failed_containers'] and module.params['fail_on_error']:
        module.fail_json(msg=failure_message(rows, result['failed_containers']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
