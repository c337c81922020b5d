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


class DeclarationErrors(DeclarationError):
    """Several problems in one declaration: str() lists each FILE:LINE:KEY with its hint.

    It is a DeclarationError (the first problem's message, where and hint), so callers
    that handle one error keep working; `hostctl validate` shows all of them at once.
    """

    def __init__(self, problems: list[DeclarationError]) -> None:
        first = problems[0]
        super().__init__(first.message, where=first.where, hint=first.hint)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join(DeclarationError.__str__(problem) for problem in self.problems)


def raise_all(problems: list[DeclarationError]) -> None:
    """Raise PROBLEMS: nothing if empty, the one error itself, or DeclarationErrors."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise DeclarationErrors(problems)


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
