#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.volume: a named volume, idempotently."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: volume
short_description: Declare or remove a named volume of hostctl
description:
  - Writes the volume's declaration (C(/etc/hostctl/volumes/NAME.yaml), or the user's
    C(~/.config/hostctl/volumes/NAME.yaml)) and reloads systemd when it changed.
  - Containers use it with a C(volumes) entry C(NAME:/path) (quadlet
    C(Volume=NAME.volume:/path)); the generator makes C(NAME-volume.service), which
    prepares it (directory, owner, or the mount of O(device)) before they start.
  - V(absent) deletes the declaration and keeps the volume's data.
  - Every key of a volume declaration is an option with the same name and meaning; an
    option left out is a key left out (hostctl's default applies).
  - Idempotent; in check mode nothing on the host changes, and with C(--diff) the
    declaration before and after is shown.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
  - hostctl.hostctl.volume_settings
attributes:
  check_mode:
    support: full
    description: Nothing on the host changes.
  diff_mode:
    support: full
    description: The declaration's text before and after.
options:
  name:
    description:
      - The volume's name (letters, digits, C(_ . -)).
    type: str
    required: true
  state:
    description:
      - V(present) declares the volume as the options say; V(absent) removes its
        declaration.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Declare the volume
  hostctl.hostctl.volume:
    name: backend
    uid: 1000
    gid: 1000

- name: Remove it
  hostctl.hostctl.volume:
    name: backend
    state: absent
'''

RETURN = r'''
path:
  description: The declaration file.
  returned: always
  type: str
  sample: /etc/hostctl/volumes/backend.yaml
declaration:
  description: The declaration's text after the task (null when absent).
  returned: always
  type: str
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["write /etc/hostctl/volumes/backend.yaml", "daemon-reload"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    require_hostctl,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.volume_settings import (
    ARGUMENT_SPEC,
    KEYS,
)


def argument_spec():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    spec.update(ARGUMENT_SPEC)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_hostctl(module)
    from ansible_collections.hostctl.hostctl.plugins.module_utils.resources import run

    run(module, 'volume', KEYS)


if __name__ == '__main__':
    main()
