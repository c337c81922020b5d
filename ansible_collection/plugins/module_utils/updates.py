"""The auto_update module's result: what the rows of hostctl auto-update add up to."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def summary(rows, check):
    """The task's result from ROWS (UpdateResult.as_json() dicts): changed when anything
    was (or, in CHECK mode, would be) updated or was rolled back."""
    wanted = 'pending' if check else 'true'
    updated = [row['container'] for row in rows if row['updated'] == wanted]
    rolled_back = [row['container'] for row in rows if row['updated'] == 'rolled back']
    failed = [row['container'] for row in rows
              if row['updated'] == 'failed' or row['dependents_failed']]
    return dict(changed=bool(updated or rolled_back), results=rows, updated=updated,
                rolled_back=rolled_back, failed_containers=failed)


def failure_message(rows, failed):
    """One message naming each FAILED container and why."""
    reasons = ['%s: %s' % (row['container'], row['reason'] or row['updated'])
               for row in rows if row['container'] in failed]
    return 'auto-update failed for ' + '; '.join(reasons)
