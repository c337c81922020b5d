"""The settings table is the one description of each setting: the model must agree."""

from __future__ import annotations

import dataclasses
import re

from hostctl.declarations.model import Container
from hostctl.declarations.settings import (
    KIND_ANSIBLE_TYPE,
    KIND_DOC_TYPE,
    RESERVED_DIRECTIVES,
    SETTINGS,
    Kind,
    Restart,
)

_MODEL_ONLY = {"name", "source", "locations", "origins", "default_instance", "unit_refs"}


def test_every_setting_is_a_model_field_and_back() -> None:
    fields = {f.name for f in dataclasses.fields(Container)}
    assert fields - _MODEL_ONLY == {s.key for s in SETTINGS}


def test_model_defaults_are_the_tables() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(Container)}
    for setting in SETTINGS:
        if setting.required:
            assert defaults[setting.key] is dataclasses.MISSING, setting.key
        else:
            assert defaults[setting.key] == setting.default, setting.key


def test_rows_are_documented() -> None:
    for setting in SETTINGS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", setting.key), setting.key
        assert setting.help.strip() and setting.maps_to.strip(), setting.key
        assert setting.example, setting.key
        assert (setting.kind is Kind.CHOICE) == (setting.choices is not None), setting.key
        assert (setting.kind is Kind.DIRECTIVES) == (setting.section is not None), setting.key


def test_every_kind_has_a_doc_and_ansible_type() -> None:
    assert set(KIND_DOC_TYPE) == set(Kind) == set(KIND_ANSIBLE_TYPE)


def test_restart_choices_and_reserved_directives() -> None:
    restart = next(s for s in SETTINGS if s.key == "restart")
    assert restart.doc_type.split(" | ") == [
        "no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always",
    ]
    assert restart.default is Restart.NO
    sections = {s.section for s in SETTINGS if s.section}
    assert set(RESERVED_DIRECTIVES) <= sections
