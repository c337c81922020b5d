"""The container module's options come from hostctl's settings table, not by hand."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from hostctl.declarations.settings import KIND_ANSIBLE_TYPE, SETTINGS, Kind, Setting

COLLECTION = Path(__file__).resolve().parents[2] / "ansible_collection"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _load(COLLECTION / "tools/generate_settings.py", "generate_settings")


def test_generated_files_are_up_to_date(generator: ModuleType) -> None:
    for path, text in generator.outputs().items():
        assert path.read_text() == text, (
            f"{path} is stale: run .venv/bin/python ansible_collection/tools/generate_settings.py"
        )


def _module_spec() -> dict[str, dict[str, object]]:
    source = (COLLECTION / "plugins/module_utils/container_settings.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "SETTINGS_ARGUMENT_SPEC":  # type: ignore[attr-defined]
            spec: dict[str, dict[str, object]] = ast.literal_eval(node.value)
            return spec
    raise AssertionError("no SETTINGS_ARGUMENT_SPEC")


def test_every_setting_is_an_option_with_its_kinds_type() -> None:
    spec = _module_spec()
    assert list(spec) == [setting.key for setting in SETTINGS]
    for setting in SETTINGS:
        assert spec[setting.key]["type"] == KIND_ANSIBLE_TYPE[setting.kind], setting.key
        if setting.choices is not None:
            assert spec[setting.key]["choices"] == [str(c) for c in setting.choices]


def test_documentation_matches_the_argument_spec(generator: ModuleType) -> None:
    options = yaml.safe_load(generator.documentation())["options"]
    spec = generator.argument_spec()
    assert list(options) == list(spec)
    for key, doc in options.items():
        assert doc["type"] == spec[key]["type"]
        assert doc.get("choices") == spec[key].get("choices")
        assert doc.get("elements") == spec[key].get("elements")
        assert doc["description"][0] == next(s.help for s in SETTINGS if s.key == key)


def test_a_new_setting_appears_in_spec_and_docs_without_another_edit(
    generator: ModuleType,
) -> None:
    extra = Setting(key="oom_score_adj", kind=Kind.COUNT, help="Bias the OOM killer.",
                    maps_to="unit [Service] OOMScoreAdjust=")
    table = (*SETTINGS, extra)
    assert generator.argument_spec(table)["oom_score_adj"] == {"type": "int"}
    documented = yaml.safe_load(generator.documentation(table))["options"]["oom_score_adj"]
    assert documented["description"][0] == "Bias the OOM killer."


def test_a_setting_named_like_a_module_option_is_refused(generator: ModuleType) -> None:
    clash = Setting(key="state", kind=Kind.BOOL, help="x", maps_to="y")
    with pytest.raises(SystemExit, match="state"):
        generator.argument_spec((*SETTINGS, clash))


@pytest.mark.parametrize("kind", ["network", "volume"])
def test_network_and_volume_options_are_their_declaration_keys(generator: ModuleType,
                                                               kind: str) -> None:
    """The network and volume modules take exactly the keys their YAML files accept."""
    from hostctl.declarations.resource_keys import NETWORK_KEYS, VOLUME_KEYS
    from hostctl.declarations.volume_file import YAML_KEYS
    from hostctl.network.defs import KEYS

    table = NETWORK_KEYS if kind == "network" else VOLUME_KEYS
    accepted = KEYS if kind == "network" else tuple(YAML_KEYS)
    utils = _load(COLLECTION / f"plugins/module_utils/{kind}_settings.py", f"{kind}_settings")
    assert utils.KEYS == accepted == tuple(k.key for k in table)
    assert generator.resource_spec(table) == utils.ARGUMENT_SPEC
    fragment = _load(COLLECTION / f"plugins/doc_fragments/{kind}_settings.py", f"{kind}_doc")
    options = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert list(options) == list(accepted)
    for key in table:
        assert options[key.key]["type"] == key.ansible_type
        assert options[key.key]["description"][0] == key.help


def test_pod_options_are_the_pod_settings_table(generator: ModuleType) -> None:
    """The pod module takes exactly the keys pods/NAME.yaml accepts, typed by their kind."""
    import dataclasses

    from hostctl.declarations.pod_file import Pod
    from hostctl.declarations.pod_settings import POD_SETTINGS

    utils = _load(COLLECTION / "plugins/module_utils/pod_settings.py", "pod_settings")
    fields = [f.name for f in dataclasses.fields(Pod)
              if f.name not in ("name", "source", "unit_refs", "locations")]
    assert list(utils.SETTING_KEYS) == [s.key for s in POD_SETTINGS] == fields
    assert generator.argument_spec(POD_SETTINGS) == utils.SETTINGS_ARGUMENT_SPEC
    for setting in POD_SETTINGS:
        assert utils.SETTINGS_ARGUMENT_SPEC[setting.key]["type"] == \
            KIND_ANSIBLE_TYPE[setting.kind]
    fragment = _load(COLLECTION / "plugins/doc_fragments/pod_settings.py", "pod_doc")
    options = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert list(options) == list(utils.SETTING_KEYS)
    assert options["exit_policy"]["choices"] == ["stop", "continue"]
    assert options["ports"]["description"][0] == POD_SETTINGS[5].help
