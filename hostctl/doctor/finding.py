"""One result of a check: OK, WARN or FAIL, what was seen, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"  # works, with a limit the user should know about
    FAIL = "FAIL"  # hostctl (or this scope of it) cannot work until it is fixed


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"check": self.check, "status": str(self.status), "detail": self.detail,
                "fix": self.fix}


def ok(check: str, detail: str) -> Finding:
    return Finding(check, Status.OK, detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Status.WARN, detail, fix)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Status.FAIL, detail, fix)
