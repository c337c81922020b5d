"""Image digests for the modules: what the store holds, what the registry says, pulling.

Check mode must not touch the store, so "would a pull change the image?" is answered by
asking the registry for the manifest digest only, never by pulling.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def stored_digest(reference, scope):
    """The digest REFERENCE resolves to in the scope's store, or None if not stored."""
    from hostctl.api.images import stored_digest as digest_in_store
    from hostctl.errors import ImageError

    try:
        return digest_in_store(reference, scope=scope)
    except ImageError:
        return None


def pinned_digest(reference):
    """The digest written in REFERENCE (name@sha256:...), or None."""
    from hostctl.images.reference import parse_reference

    return parse_reference(reference).digest


def pull(reference, scope, platform=None, policy='always'):
    """Pull REFERENCE (policy always | missing) and return the stored digest."""
    from hostctl.api.images import pull_image

    pull_image(reference, scope=scope, policy=policy, platform=platform)
    return stored_digest(reference, scope)


def refresh(reference, scope, policy, check, platform=None):
    """Bring the stored image up to date under pull POLICY (always | newer).

    Returns (changed, digest_before, digest_after, warning). Under `newer` a registry that
    cannot be reached keeps the stored image (with a warning); under `always` it fails.
    In check mode only the registry's digest (of the manifest or index the name points
    to, as stored_digest() gives it) is asked for.
    """
    from hostctl.api.images import remote_digest
    from hostctl.errors import ImageError

    before = stored_digest(reference, scope)
    if pinned_digest(reference) is not None and before is not None:
        return False, before, before, None
    try:
        if check:
            after = remote_digest(reference, scope=scope)
        else:
            after = pull(reference, scope, platform)
    except ImageError as error:
        if policy != 'newer' or before is None:
            raise
        return False, before, before, 'kept the stored image: %s' % error
    return after != before, before, after, None
