"""Pure logic of the container module: the declaration it writes, the job it runs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.hostctl.hostctl.plugins.module_utils.container import (
    declaration_of,
    unit_method,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.container_settings import (
    SETTING_KEYS,
    SETTINGS_ARGUMENT_SPEC,
)


def params(**given):
    values = dict((key, None) for key in SETTING_KEYS)
    values.update(name='web', state='started', enabled=None, scope='system', owner=None,
                  force_restart=False, remove_volumes=False)
    values.update(given)
    return values


def test_declaration_holds_only_the_settings_given_in_table_order():
    got = declaration_of(params(env={'B': '1'}, image='img:1', memory='1G', name='x'))
    assert list(got) == ['image', 'env', 'memory']
    assert got == {'image': 'img:1', 'env': {'B': '1'}, 'memory': '1G'}


def test_false_and_empty_values_are_kept_as_written():
    got = declaration_of(params(image='img:1', read_only=False, cap_add=[]))
    assert got == {'image': 'img:1', 'read_only': False, 'cap_add': []}


def test_module_options_never_reach_the_declaration():
    got = declaration_of(params(image='img:1', state='stopped', owner='alice'))
    assert got == {'image': 'img:1'}


@pytest.mark.parametrize('state, active, restart, expected', [
    ('started', 'inactive', False, 'StartUnit'),
    ('started', 'failed', True, 'StartUnit'),
    ('started', 'active', False, None),
    ('started', 'active', True, 'RestartUnit'),
    ('present', 'active', True, 'RestartUnit'),
    ('present', 'inactive', True, None),
    ('present', 'active', False, None),
    ('stopped', 'active', True, 'StopUnit'),
    ('stopped', 'inactive', True, None),
    ('restarted', 'active', False, 'RestartUnit'),
    ('restarted', 'inactive', False, 'RestartUnit'),
])
def test_the_job_each_state_needs(state, active, restart, expected):
    assert unit_method(state, active, restart) == expected


def test_every_list_option_says_what_its_elements_are():
    for key, entry in SETTINGS_ARGUMENT_SPEC.items():
        if entry['type'] == 'list':
            assert entry['elements'] in ('str', 'raw'), key
