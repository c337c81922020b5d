"""The scope and owner options every hostctl module takes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  scope:
    description:
      - V(system) for containers, images and logins of the host (root's), kept under
        C(/etc/hostctl) and C(/var/lib/hostctl) and run by the system's systemd.
      - V(user) for a user's rootless ones, kept in that user's home and run by that
        user's systemd manager (which must be running; enable lingering for the user,
        for example with the C(hostctl.hostctl.install) role's C(hostctl_linger_users)).
    type: str
    choices: [system, user]
    default: system
  owner:
    description:
      - With O(scope=user), the user whose containers these are. The module must run as
        root to act for another user; without O(owner) it acts for the user the task runs
        as (for example with C(become_user)).
    type: str
requirements:
  - hostctl (the Python package) importable by the managed host's
    C(ansible_python_interpreter); the C(hostctl.hostctl.install) role installs it and sets
    the C(hostctl_python) fact.
  - python3-pydbus on the managed host.
'''
