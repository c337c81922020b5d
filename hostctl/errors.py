"""One error type for everything a user can get wrong, carried to the boundaries.

A HostctlError is a diagnostic: a message, where it happened (file:line:key, or
image/layer/digest), and a hint. Only the boundaries (CLI, generator, launcher, Ansible
module) catch it and turn it into an exit code, a failing unit or fail_json.
"""

from __future__ import annotations


class HostctlError(Exception):
    """A problem the user can act on."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class DeclarationError(HostctlError):
    """A declaration file is malformed: where is FILE:LINE:KEY."""

    exit_code = 2


class ImageError(HostctlError):
    """A reference, registry, manifest, blob or layer problem: where names image/digest."""


class RuntimeFailure(HostctlError):
    """runc, mounts, or the OCI config could not be set up."""


class ToolMissing(HostctlError):
    """A required external program is not installed."""

    exit_code = 127


class CannotCheck(HostctlError):
    """A health check cannot run: the container is not running or has no check."""

    exit_code = 2
