"""Hostile compose input, fuzzed (hypothesis): every document ends in a project or in a
DeclarationError naming where (never another exception, which would reach a user as a
traceback from the generator). Bounded like tests/unit/test_fuzz.py."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostctl.compose.interpolate import InterpolationError, chained, parse_env, substitute
from hostctl.compose.project import load_project, render_config
from hostctl.compose.service import SERVICE_KEYS
from hostctl.errors import DeclarationError

EXAMPLES = int(os.environ.get("HOSTCTL_FUZZ_EXAMPLES", "60"))
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.text(alphabet="ab:/.$-{}=0123456789 ~", max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["source", "target", "condition", "test", "a"]), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
services = st.dictionaries(
    st.sampled_from(["web", "db", "x-a", "bad name"]),
    st.dictionaries(st.sampled_from(sorted(SERVICE_KEYS)), values, max_size=5),
    max_size=3,
)


@BOUNDED
@given(services=services, networks=st.dictionaries(st.text(max_size=5), values, max_size=2))
def test_any_document_loads_or_names_where(services: Any, networks: Any) -> None:
    document = {"services": services, "networks": networks}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "compose.yaml").write_text(yaml.safe_dump(document))
        try:
            project = load_project(Path(tmp), environ={})
        except DeclarationError as err:
            assert err.where and err.where.startswith(tmp)
        else:
            yaml.safe_load(render_config(project))


@BOUNDED
@given(text=st.text(max_size=40))
def test_escaped_text_comes_back_unchanged(text: str) -> None:
    assert substitute(text.replace("$", "$$"), chained({})) == text


@BOUNDED
@given(text=st.text(alphabet="${}:-+?AB_ x", max_size=30))
def test_any_template_substitutes_or_says_why(text: str) -> None:
    try:
        substitute(text, chained({"A": "1", "B": ""}))
    except InterpolationError as err:
        assert err.message


@BOUNDED
@given(text=st.text(alphabet="AB=#'\"\\\n $:{}x", max_size=40))
def test_any_env_file_parses_or_names_the_line(text: str) -> None:
    try:
        parse_env(text, "f.env", chained({}))
    except DeclarationError as err:
        assert err.where and err.where.startswith("f.env:")
