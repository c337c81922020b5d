#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.login: registry credentials hostctl pulls with."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: login
short_description: Store or forget registry credentials for hostctl's pulls
description:
  - Writes the registry's credentials into an C(auth.json) (the containers-auth.json
    format, mode 0600) that hostctl reads when it pulls, at a container's start too.
  - New or changed credentials are checked against the registry first (unless
    O(verify=false)); credentials already stored are not sent again, so a second run
    makes no request and reports no change.
version_added: 0.1.0
author: hostctl developers (@hostctl)
extends_documentation_fragment:
  - hostctl.hostctl.scope
attributes:
  check_mode:
    support: full
    description: Nothing is written and the registry is not contacted.
  diff_mode:
    support: none
    description: Credentials are never shown.
options:
  registry:
    description:
      - The registry's host[:port], for example C(registry.example.com).
    type: str
    required: true
  username:
    description:
      - The user name. Required with O(state=present).
    type: str
  password:
    description:
      - The password or token. Required with O(state=present).
    type: str
  state:
    description:
      - V(present) stores the credentials; V(absent) forgets the registry's entry.
    type: str
    choices: [present, absent]
    default: present
  authfile:
    description:
      - The credentials file. The default is the owner's persistent
        C(~/.config/containers/auth.json) (C(/root/.config/containers/auth.json) for
        O(scope=system)), which hostctl reads at every start, boot included.
    type: path
  verify:
    description:
      - Check the credentials against the registry before storing them.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Let every host pull the team's images
  hostctl.hostctl.login:
    registry: registry.example.com
    username: deploy
    password: "{{ vault_registry_token }}"
'''

RETURN = r'''
authfile:
  description: The credentials file written (or that would be written).
  returned: always
  type: str
  sample: /root/.config/containers/auth.json
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    run_as_owner,
    check_owner,
    require_hostctl,
)


def default_authfile():
    import pwd

    home = os.environ.get('HOME') or pwd.getpwuid(os.getuid()).pw_dir
    config = os.environ.get('XDG_CONFIG_HOME') or os.path.join(home, '.config')
    return os.path.join(config, 'containers', 'auth.json')


def stored(registry, path):
    """The credentials PATH holds for REGISTRY, or None."""
    from hostctl.images.auth import find_credentials
    from hostctl.images.reference import parse_reference

    host = registry.split('://')[-1].split('/')[0]
    return find_credentials(parse_reference('%s/login/check' % host), files=(path,))


def ensure(params, check):
    from hostctl.api.images import login, logout
    from pathlib import Path

    path = params['authfile'] or default_authfile()
    registry = params['registry']
    if params['state'] == 'absent':
        if stored(registry, path) is None:
            return dict(changed=False, authfile=path)
        if not check:
            logout(registry, authfile=Path(path))
        return dict(changed=True, authfile=path)
    have = stored(registry, path)
    wanted = (params['username'], params['password'])
    if have is not None and (have.username, have.password) == wanted:
        return dict(changed=False, authfile=path)
    if not check:
        login(registry, params['username'], params['password'], authfile=Path(path),
              verify=params['verify'])
    return dict(changed=True, authfile=path)


def main():
    spec = dict(
        registry=dict(type='str', required=True),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        authfile=dict(type='path'),
        verify=dict(type='bool', default=True),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'present', ['username', 'password'])])
    require_hostctl(module)
    check_owner(module)
    result = run_as_owner(module, ensure, module.params, module.check_mode)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
