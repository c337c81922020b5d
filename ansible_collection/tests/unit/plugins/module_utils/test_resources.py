"""Pure logic of the network and volume modules: the declaration they write."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hostctl.hostctl.plugins.module_utils import (
    network_settings,
    volume_settings,
)
from ansible_collections.hostctl.hostctl.plugins.module_utils.resources import declaration_of


def params(keys, **given):
    values = dict((key, None) for key in keys)
    values.update(name='backend', state='present', scope='system', owner=None)
    values.update(given)
    return values


def test_a_network_declaration_holds_the_keys_given_in_table_order():
    given = params(network_settings.KEYS, mtu=1400, subnet='10.90.7.0/24', internal=False)
    got = declaration_of(given, network_settings.KEYS)
    assert list(got) == ['subnet', 'internal', 'mtu']
    assert got == {'subnet': '10.90.7.0/24', 'internal': False, 'mtu': 1400}


def test_module_options_never_reach_a_volume_declaration():
    given = params(volume_settings.KEYS, uid=1000, state='absent', owner='alice')
    assert declaration_of(given, volume_settings.KEYS) == {'uid': 1000}
