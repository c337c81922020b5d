"""Pure logic of the pod module: the declaration it writes, the job its unit needs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.hostctl.hostctl.plugins.module_utils.pod import running_method
from ansible_collections.hostctl.hostctl.plugins.module_utils.pod_settings import (
    SETTING_KEYS,
    SETTINGS_ARGUMENT_SPEC,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.resources import declaration_of


def test_a_pod_declaration_holds_the_settings_given_in_table_order():
    params = dict((key, None) for key in SETTING_KEYS)
    params.update(name='shop', state='started', scope='system', owner=None,
                  stop_timeout=3, ports=['8080:80'], labels={'team': 'web'})
    got = declaration_of(params, SETTING_KEYS)
    assert list(got) == ['ports', 'labels', 'stop_timeout']
    assert 'name' not in SETTINGS_ARGUMENT_SPEC and 'state' not in SETTINGS_ARGUMENT_SPEC


@pytest.mark.parametrize(('state', 'active', 'existed', 'changed', 'method'), [
    ('started', 'inactive', False, True, 'StartUnit'),
    ('started', 'active', True, False, None),
    ('started', 'active', True, True, 'RestartUnit'),  # its members restart with it
    ('present', 'inactive', False, True, None),
    ('present', 'active', True, True, 'RestartUnit'),
    ('present', 'inactive', True, True, None),  # the new declaration at its next start
    ('stopped', 'active', True, False, 'StopUnit'),
    ('stopped', 'inactive', True, True, None),
    ('restarted', 'active', True, False, 'RestartUnit'),
])
def test_the_pods_unit_gets_the_job_its_state_needs(state, active, existed, changed, method):
    assert running_method(state, active, existed, changed) == method
