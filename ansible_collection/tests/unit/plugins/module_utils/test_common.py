"""Running a function as another user (scope user with an owner)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd

import pytest

from ansible_collections.hostctl.hostctl.plugins.module_utils.common import (
    OwnerError,
    as_owner,
    error_result,
)


def whoami():
    return os.getuid(), os.environ['HOME'], os.environ.get('XDG_RUNTIME_DIR')


def test_without_an_owner_the_function_runs_here():
    assert as_owner(None, os.getpid) == os.getpid()


def test_an_unknown_owner_is_an_error_naming_it():
    with pytest.raises(OwnerError, match='no-such-user-here'):
        as_owner('no-such-user-here', os.getpid)


@pytest.mark.skipif(os.geteuid() != 0, reason='switching users needs root')
def test_as_another_user_the_function_runs_as_that_user_with_its_environment():
    nobody = pwd.getpwnam('nobody')
    uid, home, runtime = as_owner('nobody', _tolerant_whoami)
    assert uid == nobody.pw_uid
    assert home == nobody.pw_dir
    assert runtime == '/run/user/%d' % nobody.pw_uid
    assert os.getuid() == 0  # the module's own process stays root


def _tolerant_whoami():
    return whoami()


@pytest.mark.skipif(os.geteuid() == 0, reason='needs an unprivileged user')
def test_an_unprivileged_module_cannot_act_for_someone_else():
    with pytest.raises(OwnerError, match='needs root'):
        as_owner('root', os.getpid)


def test_error_result_carries_where_and_hint():
    class Failure(Exception):
        where = 'web.yaml:3:memory'
        hint = 'use a size like 512M'

    got = error_result(Failure('bad size'))
    assert got == {'msg': 'bad size', 'where': 'web.yaml:3:memory',
                   'hint': 'use a size like 512M'}
