"""The container module's `containers` list: what each element's task would be."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.hostctl.hostctl.plugins.module_utils.batch import (
    BatchError,
    element_params,
)
from ansible_collections.hostctl.hostctl.plugins.modules.container import (
    REQUIRED_IF,
    argument_spec,
    container_spec,
)


def task(**given):
    """The task's own parameters as AnsibleModule leaves them: defaults filled in."""
    values = dict((key, entry.get('default')) for key, entry in argument_spec().items())
    values.update(given)
    return values


def expand(elements, **given):
    return element_params(task(containers=elements, **given), elements, container_spec(),
                          REQUIRED_IF)


def test_the_task_options_apply_where_an_element_does_not_set_them():
    got = expand([{'name': 'a'}, {'name': 'b', 'network': 'none', 'state': 'stopped'}],
                 image='img:1', network='host')
    assert [(p['name'], p['image'], p['network'], p['state']) for p in got] == [
        ('a', 'img:1', 'host', 'started'),
        ('b', 'img:1', 'none', 'stopped'),
    ]
    assert got[0]['memory'] is None and got[0]['force_restart'] is False


def test_an_element_is_checked_like_a_task_of_its_own():
    with pytest.raises(BatchError) as caught:
        expand([{'name': 'a', 'image': 'img:1'}, {'name': 'b'}])
    assert 'containers[1] (b)' in str(caught.value) and 'image' in str(caught.value)
    with pytest.raises(BatchError, match=r'containers\[0\] \(a\).*state'):
        expand([{'name': 'a', 'state': 'gone'}], image='img:1')
    with pytest.raises(BatchError, match=r'containers\[0\].*colour'):
        expand([{'name': 'a', 'colour': 'red'}], image='img:1')
    with pytest.raises(BatchError, match=r'containers\[0\].*name'):
        expand([{'image': 'img:1'}])


def test_absent_needs_no_image():
    got = expand([{'name': 'old', 'state': 'absent'}])
    assert got[0]['state'] == 'absent' and got[0]['image'] is None


def test_a_name_given_twice_is_an_error():
    with pytest.raises(BatchError, match=r'containers\[2\] \(a\): a is also containers\[0\]'):
        expand([{'name': 'a'}, {'name': 'b'}, {'name': 'a'}], image='img:1')
    # The same name in another scope is another container.
    assert len(expand([{'name': 'a'}, {'name': 'a', 'scope': 'user'}], image='img:1')) == 2


def test_an_element_that_is_not_a_dictionary_is_an_error():
    with pytest.raises(BatchError, match='dictionary'):
        expand(['web'], image='img:1')
