"""Each broken compose file under tests/data/compose/bad names its FILE:LINE:KEY.

The first line of each file says what is expected:
`# error: LINE:KEY: a fragment of the message | a fragment of the hint`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.compose.project import load_project
from hostctl.errors import DeclarationError

BAD = Path(__file__).parent.parent / "data" / "compose" / "bad"


def _expected(path: Path) -> tuple[str, str, str]:
    header = path.read_text().splitlines()[0].removeprefix("# error: ")
    line, key, rest = header.split(":", 2)
    message, _, hint = rest.partition(" | ")
    where = f"{path}:{line}:{key}" if key else f"{path}:{line}"
    return where, message.strip(), hint.strip()


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_file_names_file_line_key(path: Path) -> None:
    where, message, hint = _expected(path)
    with pytest.raises(DeclarationError) as caught:
        load_project(BAD, files=[path], environ={})
    error = caught.value
    assert (error.where, message in error.message) == (where, True), str(error)
    assert hint in (error.hint or ""), str(error)


def test_error_in_an_override_names_the_override(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    (tmp_path / "compose.override.yaml").write_text(
        "services:\n  web:\n    ports:\n      - 99999999999:80/x y\n"
    )
    with pytest.raises(DeclarationError) as caught:
        load_project(tmp_path, environ={})
    assert caught.value.where == f"{tmp_path / 'compose.override.yaml'}:4:services.web.ports[0]"


def test_no_compose_file(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError) as caught:
        load_project(tmp_path, environ={})
    assert caught.value.where == str(tmp_path)
    assert "no compose file" in caught.value.message
