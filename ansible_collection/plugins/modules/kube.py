#!/usr/bin/python
# Copyright: (c) 2026, hostctl developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostctl.hostctl.kube: Kubernetes YAML played as hostctl pods, idempotently."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: kube
short_description: Play a Kubernetes YAML as hostctl pods and containers, or take it down
description:
  - Translates a Kubernetes YAML (Pod, Deployment with its replicas, ConfigMap, Secret,
    PersistentVolumeClaim) into hostctl pods and member containers as C(hostctl kube play)
    does, writes their declarations (C(/etc/hostctl/pods), C(/etc/hostctl/containers), or
    the user's under C(~/.config/hostctl)), reloads systemd and starts each pod's unit
    C(POD-pod.service), which starts its members.
  - The YAML is translated and checked on the managed host first; a field hostctl cannot
    honour fails the task naming the file, line and field path, and nothing is changed.
  - Idempotent. An app installed as the YAML says is left alone (its pods are started when
    they do not run); when anything differs, the app is replaced as
    C(hostctl kube play --replace) replaces it (its units stopped, the files written, the
    pods started again).
  - O(state=absent) is C(hostctl kube down) (the pods and members stopped, their
    declarations removed; the PersistentVolumeClaims' named volumes kept unless
    O(remove_volumes)).
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
    description: Each declaration file before and after; the ConfigMap and Secret files
      by size, mode and digest (never their content).
options:
  name:
    description:
      - The app's name. With O(src) it is the file's name without its suffix (as
        C(hostctl kube play) names the app), and may be left out; with O(definition) it
        is required.
    type: str
  src:
    description:
      - A Kubernetes YAML file on the managed host. One of O(src) and O(definition) is
        required unless O(state=absent).
    type: path
  definition:
    description:
      - The YAML given inline instead of O(src) - a mapping (one object), a list of them,
        or YAML text (several documents). It is kept as
        C(/etc/hostctl/kube/NAME/NAME.yaml) (a user's under C(~/.config/hostctl)) and
        removed with the app.
    type: raw
  configmaps:
    description:
      - Files on the managed host of ConfigMaps the YAML refers to
        (C(hostctl kube play --configmap)).
    type: list
    elements: path
  state:
    description:
      - V(present) installs the app and starts its pods; V(absent) takes it down.
    type: str
    choices: [present, absent]
    default: present
  remove_volumes:
    description:
      - With O(state=absent), remove the PersistentVolumeClaims' named volumes too
        (C(hostctl kube down --volumes)).
    type: bool
    default: false
notes:
  - A Secret's values used as environment variables are part of the members'
    declarations, so C(--diff) shows them; use C(no_log) on such a task.
seealso:
  - module: hostctl.hostctl.pod
  - module: hostctl.hostctl.container
'''

EXAMPLES = r'''
- name: Play a Kubernetes YAML that is on the host
  hostctl.hostctl.kube:
    src: /srv/shop/shop.yaml

- name: A small pod given inline
  hostctl.hostctl.kube:
    name: hello
    definition:
      apiVersion: v1
      kind: Pod
      metadata:
        name: hello
      spec:
        containers:
          - name: web
            image: registry.example.com/httpd:1
            ports:
              - containerPort: 8080
                hostPort: 18080

- name: Take it down
  hostctl.hostctl.kube:
    name: hello
    state: absent
'''

RETURN = r'''
app:
  description: The app's name.
  returned: always
  type: str
  sample: shop
units:
  description: The app's pod units, which start their members.
  returned: always
  type: list
  elements: str
  sample: ["web-pod-0-pod.service", "web-pod-1-pod.service"]
files:
  description: The files of the app after the task (empty when absent).
  returned: always
  type: list
  elements: str
  sample: ["/etc/hostctl/containers/web-pod-0-httpd.yaml", "/etc/hostctl/pods/web-pod-0.yaml"]
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["write /etc/hostctl/pods/hello.yaml", "daemon-reload", "start hello-pod.service"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    SCOPE_ARGUMENT_SPEC,
    check_owner,
    require_hostctl,
    run_as_owner,
    scope_of,
)


def argument_spec():
    spec = dict(
        name=dict(type='str'),
        src=dict(type='path'),
        definition=dict(type='raw'),
        configmaps=dict(type='list', elements='path'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        remove_volumes=dict(type='bool', default=False),
    )
    spec.update(SCOPE_ARGUMENT_SPEC)
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(), supports_check_mode=True,
        mutually_exclusive=[('src', 'definition')],
        required_one_of=[('name', 'src')],
        required_if=[('state', 'present', ('src', 'definition'), True)],
    )
    require_hostctl(module)
    check_owner(module)
    from ansible_collections.hostctl.hostctl.plugins.module_utils.kube import (
        KubeOptionError,
        app_of,
        ensure,
    )

    try:
        app_of(module.params)
    except KubeOptionError as error:
        module.fail_json(msg=str(error))
    result = run_as_owner(module, ensure, module.params, scope_of(module.params),
                          module.check_mode)
    if not module._diff:
        result.pop('diff')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
