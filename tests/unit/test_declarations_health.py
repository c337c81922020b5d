"""The health check, readiness and auto-update settings, in YAML and in quadlet files:
typed values (durations in seconds, commands in the image config's Healthcheck.Test form)
and errors at FILE:LINE:KEY."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.declarations.quadlet_reader import parse_quadlet
from hostctl.declarations.settings import AutoUpdate, HealthOnFailure
from hostctl.declarations.values import format_duration, parse_duration
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError

IMAGE = "image: registry.example/app:1\n"
SOURCE = Path("/etc/hostctl/containers/app.yaml")
QUADLET = Path("/etc/containers/systemd/app.container")


def yaml(text: str):  # type: ignore[no-untyped-def]
    return parse_yaml(IMAGE + text, SOURCE)


def quadlet(text: str):  # type: ignore[no-untyped-def]
    return parse_quadlet("[Container]\nImage=registry.example/app:1\n" + text, QUADLET)


def test_defaults_have_no_check_and_podmans_timings() -> None:
    container = yaml("")
    assert container.health_cmd is None
    assert (container.health_interval, container.health_timeout) == (30.0, 30.0)
    assert (container.health_retries, container.health_start_period) == (3, 0.0)
    assert container.health_on_failure is HealthOnFailure.NONE
    assert container.notify is False and not container.ready_when_healthy
    assert container.auto_update is None


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("1.5s", 1.5),
    ("45", 45.0), ("0", 0.0), ("disable", 0.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_yaml_numbers_are_seconds() -> None:
    container = yaml("health_interval: 5\nhealth_timeout: 0.25\nhealth_start_period: 1m\n")
    assert (container.health_interval, container.health_timeout) == (5.0, 0.25)
    assert container.health_start_period == 60.0


@pytest.mark.parametrize(("seconds", "text"), [(30.0, "30s"), (90.0, "1min30s"),
                                               (0.5, "500ms"), (3600.0, "1h")])
def test_durations_are_written_as_systemd_time_spans(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_health_cmd_forms() -> None:
    assert yaml("health_cmd: curl -f http://localhost/\n").health_cmd == (
        "CMD-SHELL", "curl -f http://localhost/")
    assert yaml("health_cmd: [curl, -f, x]\n").health_cmd == ("CMD", "curl", "-f", "x")
    assert yaml("health_cmd: none\n").health_cmd == ("NONE",)
    # a YAML string is a shell command even when it looks like JSON: [ is test(1)
    assert yaml("health_cmd: '[ -f /ready ]'\n").health_cmd == ("CMD-SHELL", "[ -f /ready ]")


def test_quadlet_health_keys_map_like_podman() -> None:
    container = quadlet(
        'HealthCmd=["/bin/check", "--quick"]\nHealthInterval=10s\nHealthTimeout=2s\n'
        "HealthRetries=5\nHealthStartPeriod=1m\nHealthOnFailure=kill\n"
        "HealthStartupCmd=test -e /run/ready\nHealthStartupInterval=1s\n"
        "HealthStartupTimeout=3s\nHealthStartupRetries=20\nHealthStartupSuccess=2\n"
        "Notify=healthy\nAutoUpdate=registry\n")
    assert container.health_cmd == ("CMD", "/bin/check", "--quick")
    assert (container.health_interval, container.health_timeout) == (10.0, 2.0)
    assert (container.health_retries, container.health_start_period) == (5, 60.0)
    assert container.health_on_failure is HealthOnFailure.KILL
    assert container.health_startup_cmd == ("CMD-SHELL", "test -e /run/ready")
    assert (container.health_startup_interval, container.health_startup_timeout) == (1.0, 3.0)
    assert (container.health_startup_retries, container.health_startup_success) == (20, 2)
    assert container.ready_when_healthy and not container.ready_by_container
    assert container.auto_update is AutoUpdate.REGISTRY


def test_quadlet_shell_command_that_looks_like_json_stays_a_shell_command() -> None:
    assert quadlet("HealthCmd=[ -f /ready ]\n").health_cmd == ("CMD-SHELL", "[ -f /ready ]")
    assert quadlet("HealthInterval=disable\n").health_interval == 0.0


def test_notify_values() -> None:
    assert yaml("notify: true\n").ready_by_container
    assert yaml("notify: healthy\n").ready_when_healthy
    assert quadlet("Notify=yes\n").ready_by_container


@pytest.mark.parametrize(("text", "where", "message"), [
    ("health_interval: 5x\n", ":2:health_interval", "is not a duration"),
    ("health_interval: -1\n", ":2:health_interval", "negative"),
    ("health_timeout: 0s\n", ":2:health_timeout", "zero duration"),
    ("health_retries: 0\n", ":2:health_retries", "too small"),
    ("health_on_failure: reboot\n", ":2:health_on_failure", "allowed: none, kill, stop"),
    ("notify: maybe\n", ":2:notify", "true, false or healthy"),
    ("health_cmd: none\nnotify: healthy\n", ":3:notify", "health_cmd: none"),
    ("health_cmd: [CMD, curl]\n", ":2:health_cmd", "starts with 'CMD'"),
    ("health_cmd: []\n", ":2:health_cmd", "not a list of strings"),
    ("health_startup_cmd: none\n", ":2:health_startup_cmd", "cannot be none"),
    ("auto_update: always\n", ":2:auto_update", "allowed: registry, local"),
])
def test_errors_name_file_line_and_key(text: str, where: str, message: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        yaml(text)
    assert f"{SOURCE}{where}" in str(caught.value)
    assert message in str(caught.value)


def test_quadlet_error_names_line_and_key() -> None:
    with pytest.raises(DeclarationError) as caught:
        quadlet("HealthRetries=0\n")
    assert f"{QUADLET}:3:HealthRetries" in str(caught.value)
