"""What every hostctl module needs: the guarded import, scopes, owners, errors.

hostctl is a Python package on the managed host; the modules call its API in-process
(no `hostctl` subprocess). A user's rootless containers belong to that user's systemd
manager and files, so for `scope: user` with an `owner` other than the one the module runs
as, the work happens in a forked child that has become the owner (root only).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import traceback

from ansible.module_utils.basic import missing_required_lib

HOSTCTL_IMPORT_ERROR = None
try:
    from hostctl.errors import HostctlError
    from hostctl.paths import Scope
except ImportError:
    HOSTCTL_IMPORT_ERROR = traceback.format_exc()

    class HostctlError(Exception):  # stands in until hostctl imports; never raised
        def __init__(self, message, where=None, hint=None):
            super(HostctlError, self).__init__(message)
            self.message, self.where, self.hint = message, where, hint

    Scope = None

SCOPE_ARGUMENT_SPEC = dict(
    scope=dict(type='str', default='system', choices=['system', 'user']),
    owner=dict(type='str'),
)


class OwnerError(Exception):
    """The owner cannot be switched to, or the forked child failed."""


def require_hostctl(module):
    """Fail the task, saying how to get hostctl, when it cannot be imported."""
    if HOSTCTL_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib(
                'hostctl',
                reason='the hostctl modules call its Python API',
                url='run the hostctl.hostctl.install role, then set '
                    'ansible_python_interpreter to its hostctl_python fact'),
            exception=HOSTCTL_IMPORT_ERROR)


def scope_of(params):
    return Scope(params['scope'])


def owner_problem(params):
    """Why PARAMS' owner cannot be (an owner only makes sense for scope user), or None."""
    if params.get('owner') and params['scope'] != 'user':
        return ('owner is only valid with scope=user (it names the user whose rootless '
                'containers these are)')
    return None


def check_owner(module):
    """Fail the task when its owner option makes no sense (see owner_problem)."""
    problem = owner_problem(module.params)
    if problem:
        module.fail_json(msg=problem)


def error_result(error):
    """fail_json arguments for a HostctlError: the message, where and the hint."""
    result = dict(msg=str(error))
    if getattr(error, 'where', None):
        result['where'] = error.where
    if getattr(error, 'hint', None):
        result['hint'] = error.hint
    return result


def run_as_owner(module, function, *args):
    """FUNCTION(*ARGS) as the task's owner; a failure fails the task with its diagnostics."""
    try:
        return as_owner(module.params['owner'], function, *args)
    except HostctlError as error:
        module.fail_json(**error_result(error))
    except OwnerError as error:
        module.fail_json(msg=str(error))


def as_owner(owner, function, *args):
    """FUNCTION(*ARGS), run as OWNER when that is another user; its value must pickle.

    A HostctlError in the child comes back as a HostctlError with its message, where and
    hint; anything else as OwnerError with the child's traceback.
    """
    import pwd

    if not owner:
        return function(*args)
    try:
        account = pwd.getpwnam(owner)
    except KeyError:
        raise OwnerError('no such user: %s' % owner)
    if account.pw_uid == os.geteuid():
        return function(*args)
    if os.geteuid() != 0:
        raise OwnerError('owner=%s needs root on the host (become: true), or run the task '
                         'as that user (become_user: %s) without owner' % (owner, owner))
    return _in_child(account, function, args)


def _in_child(account, function, args):
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(read_end)
        _child(account, function, args, write_end)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, 'rb') as reader:
        chunks.append(reader.read())
    os.waitpid(pid, 0)
    if not chunks[0]:
        raise OwnerError('the process working as %s died without a result' % account.pw_name)
    kind, value = pickle.loads(b''.join(chunks))
    if kind == 'ok':
        return value
    if kind == 'hostctl':
        message, where, hint = value
        raise HostctlError(message, where=where, hint=hint)
    raise OwnerError(value)


def _child(account, function, args, write_end):
    import pickle

    outcome = None
    try:
        _become(account)
        outcome = ('ok', function(*args))
    except HostctlError as error:
        outcome = ('hostctl', (error.message, error.where, error.hint))
    except BaseException:
        outcome = ('crash', traceback.format_exc())
    try:
        with os.fdopen(write_end, 'wb') as writer:
            writer.write(pickle.dumps(outcome))
    finally:
        os._exit(0)


def _become(account):
    """Switch this (child) process to ACCOUNT with the environment its login would have."""
    os.setgroups(os.getgrouplist(account.pw_name, account.pw_gid))
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    runtime = '/run/user/%d' % account.pw_uid
    for name in ('DBUS_SESSION_BUS_ADDRESS', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME',
                 'REGISTRY_AUTH_FILE', 'HOSTCTL_STATE_DIR', 'HOSTCTL_RUN_DIR',
                 'HOSTCTL_CONFIG_DIR'):
        os.environ.pop(name, None)
    os.environ.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name,
                      XDG_RUNTIME_DIR=runtime)
    # Without a running manager (no lingering), hostctl's D-Bus client says so, with a hint.
    os.chdir(account.pw_dir if os.path.isdir(account.pw_dir) else '/')
