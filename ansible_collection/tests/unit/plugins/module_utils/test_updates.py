"""The auto_update module's result from hostctl auto-update's rows."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hostctl.hostctl.plugins.module_utils.updates import (
    failure_message,
    summary,
)


def row(name, updated, reason='', dependents_failed=()):
    return dict(unit=name + '.service', container=name, image='r/' + name, policy='registry',
                updated=updated, running_digest=None, available_digest=None, digest=None,
                reason=reason, dependents=[], dependents_failed=list(dependents_failed))


def test_check_mode_changes_when_something_is_pending():
    result = summary([row('web', 'pending'), row('db', 'false')], True)
    assert result['changed'] and result['updated'] == ['web']
    assert not summary([row('web', 'false')], True)['changed']


def test_updated_or_rolled_back_is_a_change_and_failures_are_named():
    rows = [row('web', 'true'), row('db', 'rolled back', 'exited'),
            row('far', 'failed', 'registry far unreachable'),
            row('dep', 'true', dependents_failed=['consumer.service'])]
    result = summary(rows, False)
    assert result['changed']
    assert result['updated'] == ['web', 'dep'] and result['rolled_back'] == ['db']
    assert result['failed_containers'] == ['far', 'dep']
    message = failure_message(rows, result['failed_containers'])
    assert message == 'auto-update failed for far: registry far unreachable; dep: true'
