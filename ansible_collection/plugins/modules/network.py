#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.network: a named network, idempotently."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: network
short_description: Declare or remove a named network of hostctl
description:
  - Writes the network's declaration (C(/etc/hostctl/networks/NAME.yaml), or the user's
    C(~/.config/hostctl/networks/NAME.yaml)) and reloads systemd when it changed.
  - Containers join it with their O(hostctl.hostctl.container#module:network=NAME) option
    (quadlet C(Network=NAME.network)); a member gets a changed network at its next start.
    For O(scope=user) the generator makes its holder unit C(hostctl-network-NAME.service).
  - The name V(bridge) (O(scope=system)) changes the settings of hostctl's default network.
  - Every key of a network declaration is an option with the same name and meaning; an
    option left out is a key left out (hostctl's default applies).
  - Idempotent; in check mode nothing on the host changes, and with C(--diff) the
    declaration before and after is shown.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
  - hostctl.hostctl.network_settings
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
      - The network's name (letters, digits, C(_ . -)).
    type: str
    required: true
  state:
    description:
      - V(present) declares the network as the options say; V(absent) removes its
        declaration.
    type: str
    choices: [present, absent]
    default: present
'''

EXAMPLES = r'''
- name: Declare the network
  hostctl.hostctl.network:
    name: backend
    subnet: 10.90.7.0/24
    internal: false

- name: Remove it
  hostctl.hostctl.network:
    name: backend
    state: absent
'''

RETURN = r'''
path:
  description: The declaration file.
  returned: always
  type: str
  sample: /etc/hostctl/networks/backend.yaml
declaration:
  description: The declaration's text after the task (null when absent).
  returned: always
  type: str
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["write /etc/hostctl/networks/backend.yaml", "daemon-reload"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    require_hostctl,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.network_settings import (
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

    run(module, 'network', KEYS)


if __name__ == '__main__':
    main()
