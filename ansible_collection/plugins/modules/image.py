#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.image: an image in hostctl's store."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: image
short_description: Pull or remove an image in hostctl's store
description:
  - Makes sure an image is in hostctl's content-addressed store (pulled from its
    registry), up to date with the registry, or gone.
  - A reference pinned by digest (C(name@sha256:...)) is pulled once and never again.
  - In check mode nothing is pulled or removed; with O(pull=always) the registry is asked
    for the current digest only.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
attributes:
  check_mode:
    support: full
    description: Nothing is pulled or removed.
  diff_mode:
    support: none
    description: Not applicable.
options:
  name:
    description:
      - The image reference, for example C(docker.io/library/nginx:1.27) or
        C(registry.example.com/app@sha256:...).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the image is stored; V(absent) removes its name from the
        store and deletes the blobs and layers nothing else needs (layers a running
        container still uses stay until it stops).
    type: str
    choices: [present, absent]
    default: present
  pull:
    description:
      - V(missing) pulls only when the image is not stored; V(always) asks the registry
        every time and pulls when the digest changed (a change).
    type: str
    choices: [missing, always]
    default: missing
  platform:
    description:
      - The os/arch[/variant] to pull from a multi-platform image (default the host's).
    type: str
'''

EXAMPLES = r'''
- name: Have nginx pinned to one digest on every host
  hostctl.hostctl.image:
    name: docker.io/library/nginx@sha256:0a2b...

- name: Follow a tag
  hostctl.hostctl.image:
    name: registry.example.com/team/app:1.4
    pull: always

- name: Remove an image
  hostctl.hostctl.image:
    name: registry.example.com/team/app:1.3
    state: absent
'''

RETURN = r'''
digest:
  description: The stored image's digest after the task (null when absent, or when
    check mode would pull it).
  returned: always
  type: str
  sample: sha256:5d7d1e2b3c...
digest_before:
  description: The stored image's digest before the task (null when it was not stored).
  returned: always
  type: str
actions:
  description: What was done (or, in check mode, would be done).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    HostctlError,
    run_as_owner,
    check_owner,
    require_hostctl,
    scope_of,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils import images


def ensure_present(params, scope, check):
    reference = params['name']
    before = images.stored_digest(reference, scope)
    if before is not None and params['pull'] == 'missing':
        return dict(changed=False, digest=before, digest_before=before, actions=[])
    if before is not None and images.pinned_digest(reference) is not None:
        return dict(changed=False, digest=before, digest_before=before, actions=[])
    if check:
        from hostctl.api.images import remote_digest

        after = remote_digest(reference, scope=scope) if before is not None else None
        changed = before is None or after != before
    else:
        after = images.pull(reference, scope, params['platform'],
                            policy='always' if before is not None else 'missing')
        changed = after != before
    actions = ['pull %s' % reference] if changed else []
    return dict(changed=changed, digest=after, digest_before=before, actions=actions)


def ensure_absent(params, scope, check):
    from hostctl.api.images import remove_images

    reference = params['name']
    before = images.stored_digest(reference, scope)
    if before is None:
        return dict(changed=False, digest=None, digest_before=None, actions=[])
    if not check:
        report = remove_images([reference], scope=scope)
        if report.problems:
            raise HostctlError('; '.join(report.problems), where=reference)
    return dict(changed=True, digest=None, digest_before=before,
                actions=['remove %s' % reference])


def ensure(params, scope, check):
    if params['state'] == 'absent':
        return ensure_absent(params, scope, check)
    return ensure_present(params, scope, check)


def main():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        pull=dict(type='str', default='missing', choices=['missing', 'always']),
        platform=dict(type='str'),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    require_hostctl(module)
    check_owner(module)
    result = run_as_owner(module, ensure, module.params, scope_of(module.params), module.check_mode)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
