"""hostctl.units.template against jinja2: every unit template rendered both ways, over
contexts that take each branch, gives the same text."""

from __future__ import annotations

import itertools
import os

import jinja2
import pytest

from hostctl.errors import HostctlError
from hostctl.units import template

TEMPLATES = sorted(n for n in os.listdir(template.TEMPLATE_DIR) if n.endswith(".j2"))
JINJA = jinja2.Environment(
    loader=jinja2.FileSystemLoader(template.TEMPLATE_DIR), autoescape=False,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    keep_trailing_newline=True)
LISTS = ("requires", "binds_to", "mounts_for", "resources", "unit", "service", "install",
         "members", "pods", "yaml", "unit_lines", "service_lines", "install_lines")
FLAGS = ("user", "default_dependencies", "init", "oneshot", "device")
TEXTS = ("health_timer", "working_directory", "source")


def _names(text: str) -> set[str]:
    """Every name the template reads (jinja2's own analysis)."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(JINJA.parse(text)))


def _contexts(names: set[str]) -> list[dict[str, object]]:
    """Contexts taking each branch: every flag both ways, lists empty and with two items,
    optional texts empty and set (all off, all on, each one alone on, each one alone off;
    every combination when there are few)."""
    toggles = sorted(n for n in names if n in FLAGS + LISTS + TEXTS)
    count = len(toggles)
    if count <= 6:
        choices = list(itertools.product((False, True), repeat=count))
    else:
        alone = [tuple(i == j for j in range(count)) for i in range(count)]
        choices = [(False,) * count, (True,) * count, *alone,
                   *(tuple(not v for v in values) for values in alone)]
    contexts = []
    for values in choices:
        context: dict[str, object] = {n: f"<{n} value>" for n in names}
        context.update({"timeout": 7, "stop_timeout": 12, "start_timeout": 300})
        for name, on in zip(toggles, values, strict=True):
            if name in LISTS:
                context[name] = [f"{name}-a", f"{name} b"] if on else []
            elif name in FLAGS:
                context[name] = on
            else:
                context[name] = f"/{name}/x" if on else ""
        contexts.append(context)
    return contexts


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_renders_as_jinja2_does(name: str) -> None:
    with open(os.path.join(template.TEMPLATE_DIR, name), encoding="utf-8") as file:
        text = file.read()
    contexts = _contexts(_names(text))
    for context in contexts:
        assert template.render(name, context) == JINJA.get_template(name).render(context)


@pytest.mark.parametrize("text", [
    "a\n  {% if x %}\n  b {{ y }}\n  {% else %}\nc\n{% endif %}\nd",
    "{% for unit in us %}{{ unit }},{% endfor %}{{ unit }}\n",
    "{% for i in us %}\n{% for j in us %}\n{{ i }}{{ j }}\n{% endfor %}\n{% endfor %}\n",
    "x {% if x %}y{% endif %} z\n\t{% if not x %}\nw{% endif %}",
    "{{ us | join(\" \") }}|{{ us|join }}|{{ 'a' if x else \"b\" }}{{ n + 30 }}",
    "{# a comment #}\n  {# another #}\nv{{ y }}\n",
    "{% if x %}{% endif %}{% for i in us %}{% endfor %}end",
])
def test_the_language_it_knows_renders_as_jinja2(text: str) -> None:
    for x in (True, False):
        context = {"x": x, "y": "Y", "us": ["u1", "u2"], "unit": "U", "n": 4}
        assert template.compile_template(text)(context) == \
            jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True, keep_trailing_newline=True
                               ).from_string(text).render(context)


@pytest.mark.parametrize(("text", "why"), [
    ("{{ x | upper }}", "the only filter is join"),
    ("{% while x %}{% endwhile %}", "not a tag this compiler knows"),
    ("{% endif %}", "no open block it closes"),
    ("{% for a in b %}{% endif %}", "no open block it closes"),
    ("{% if x %}", "is not closed"),
])
def test_what_it_does_not_know_is_an_error_naming_the_tag(text: str, why: str) -> None:
    with pytest.raises(HostctlError, match=why) as caught:
        template.compile_template(text, "t.j2")
    assert "unit template t.j2" in str(caught.value)


def test_a_missing_name_raises_as_strict_undefined_does() -> None:
    with pytest.raises(KeyError):
        template.compile_template("{{ nothing }}")({})
