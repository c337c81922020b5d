"""`hostctl doctor`: check what hostctl needs on this host and say what to do."""

from __future__ import annotations

import json

import typer

from hostctl.cli.common import FormatOpt, UserOpt, app, scope_of


@app.command()
def doctor(user: UserOpt = False, fmt: FormatOpt = "table") -> None:
    """Check this host for hostctl (systemd, cgroups, runc and its CVEs, overlay, D-Bus,
    the generator, registries/auth/policy files, disk; with --user what rootless
    containers need): OK, WARN or FAIL with a fix per line; exit status 1 on a FAIL."""
    from hostctl.api.doctor import diagnose, failed

    findings = diagnose(scope_of(user))
    if fmt == "json":
        typer.echo(json.dumps([finding.as_json() for finding in findings], indent=2))
    else:
        width = max(len(finding.check) for finding in findings)
        for finding in findings:
            typer.echo(f"{finding.status:4}  {finding.check:{width}}  {finding.detail}")
            if finding.fix:
                typer.echo(f"{'':4}  {'':{width}}  fix: {finding.fix}")
    if failed(findings):
        raise typer.Exit(1)
