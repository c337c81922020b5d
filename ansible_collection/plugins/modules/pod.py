#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.pod: a declared pod, idempotently."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: pod
short_description: Declare, start, stop or remove a hostctl pod
description:
  - Writes the pod's declaration (C(/etc/hostctl/pods/NAME.yaml), or the user's
    C(~/.config/hostctl/pods/NAME.yaml)), reloads systemd when it changed, and brings the
    pod's unit C(NAME-pod.service) (or O(service_name)) to the requested state.
  - A pod holds the network, IPC and UTS namespaces its members share; its unit starts
    the members that have O(hostctl.hostctl.container#module:start_with_pod=true) (the
    default), and a member stops with it. Containers join it with the container
    module's O(hostctl.hostctl.container#module:pod=NAME) option.
  - Every key of a pod declaration is an option with the same name and meaning; an option
    left out is a key left out (hostctl's default applies).
  - Idempotent. A pod whose declaration changed is restarted when it runs (its members
    with it); in check mode nothing on the host changes, and with C(--diff) the
    declaration before and after is shown.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
  - hostctl.hostctl.pod_settings
attributes:
  check_mode:
    support: full
    description: Nothing is written, started or stopped; the result says what would be.
  diff_mode:
    support: full
    description: The declaration's text before and after.
options:
  name:
    description:
      - The pod's name (its file's name), which members name in their O(hostctl.hostctl.container#module:pod)
        option.
    type: str
    required: true
  state:
    description:
      - V(present) declares the pod without starting or stopping it (a running pod whose
        declaration changed is restarted); V(started) also starts its unit, V(stopped)
        stops it (and its members), V(restarted) restarts it (and its members) on every
        run.
      - V(absent) stops the pod (and its members) and removes its declaration; the
        members' own declarations are kept.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
notes:
  - "A pod starts at boot when its O(install) says so (for example
    C({WantedBy: multi-user.target})); an enabled pod starts its members."
seealso:
  - module: hostctl.hostctl.container
  - module: hostctl.hostctl.kube
'''

EXAMPLES = r'''
- name: A pod publishing port 8080, its members sharing localhost
  hostctl.hostctl.pod:
    name: shop
    ports: ["8080:80"]
    install: {WantedBy: multi-user.target}

- name: Its members
  hostctl.hostctl.container:
    name: "{{ item.name }}"
    image: "{{ item.image }}"
    pod: shop
  loop:
    - {name: shop-web, image: docker.io/library/nginx:1.27}
    - {name: shop-cache, image: docker.io/library/redis:7}

- name: A user's pod
  hostctl.hostctl.pod:
    name: notes
    scope: user
    owner: alice

- name: Stop the pod and remove its declaration
  hostctl.hostctl.pod:
    name: shop
    state: absent
'''

RETURN = r'''
path:
  description: The declaration file.
  returned: always
  type: str
  sample: /etc/hostctl/pods/shop.yaml
declaration:
  description: The declaration's text after the task (null when absent).
  returned: always
  type: str
  sample: "ports:\n- 8080:80\n"
unit:
  description: The pod's systemd unit.
  returned: always
  type: str
  sample: shop-pod.service
unit_state:
  description: The unit's ActiveState after the task (null in check mode when something
    would change).
  returned: always
  type: str
  sample: active
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["write /etc/hostctl/pods/shop.yaml", "daemon-reload", "start shop-pod.service"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    require_hostctl,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.pod_settings import (
    SETTING_KEYS,
    SETTINGS_ARGUMENT_SPEC,
)


def argument_spec():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='started',
                   choices=['present', 'started', 'stopped', 'restarted', 'absent']),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    spec.update(SETTINGS_ARGUMENT_SPEC)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_hostctl(module)
    from ansible_collections.hostctl.hostctl.plugins.module_utils.pod import ensure
    from ansible_collections.hostctl.hostctl.plugins.module_utils.resources import run

    run(module, 'pod', SETTING_KEYS, ensure)


if __name__ == '__main__':
    main()
