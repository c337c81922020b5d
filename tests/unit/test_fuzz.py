"""Hostile input, fuzzed (hypothesis): the declaration readers (YAML and quadlet),
references, manifests and indexes, registries.conf, auth.json and the layer applier.
Every input ends in a value or in hostctl's own error naming where (never another
exception, which would reach a user as a traceback), and a layer never writes outside
its destination. Bounded: a few dozen examples each, so the module takes seconds."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostctl.declarations.quadlet_reader import BY_QUADLET, parse_quadlet
from hostctl.declarations.settings import BY_KEY
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError, HostctlError, ImageError
from hostctl.images import regconf
from hostctl.images.auth import load_auth_file
from hostctl.images.layers import apply_layer
from hostctl.images.manifest import parse_document
from hostctl.images.reference import parse_reference

# HOSTCTL_FUZZ_EXAMPLES=2000 for a longer hunt than the suite's.
EXAMPLES = int(os.environ.get("HOSTCTL_FUZZ_EXAMPLES", "60"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SOURCE = Path("/etc/hostctl/containers/fuzz.yaml")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True), st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


def _refused_well(err: HostctlError, where: str) -> None:
    assert where in (err.where or ""), (err.where, where)
    assert str(err)


@BOUNDED
@given(st.text(max_size=300))
def test_yaml_reader_on_any_text(text: str) -> None:
    try:
        parse_yaml(text, SOURCE)
    except DeclarationError as err:
        _refused_well(err, str(SOURCE))


@BOUNDED
@given(st.dictionaries(st.sampled_from([*BY_KEY, "nope"]), values, max_size=6))
def test_yaml_reader_on_any_settings(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump({"image": "docker.io/library/busybox:1", **doc})
    try:
        parse_yaml(text, SOURCE)
    except DeclarationError as err:
        _refused_well(err, str(SOURCE))


quadlet_lines = st.lists(st.one_of(
    st.sampled_from(["[Container]", "[Service]", "[Unit]", "[Install]", "[Other]", "\\", "#"]),
    st.builds(lambda key, value: f"{key}={value}",
              st.sampled_from([*BY_QUADLET, "Mount", "Restart", "Nope"]),
              st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
                      max_size=40)),
), max_size=12)


@BOUNDED
@given(quadlet_lines)
def test_quadlet_reader_on_any_lines(lines: list[str]) -> None:
    source = Path("/etc/hostctl/containers/fuzz.container")
    try:
        parse_quadlet("\n".join(["[Container]", "Image=docker.io/library/busybox:1", *lines]),
                      source)
    except DeclarationError as err:
        _refused_well(err, str(source))


@BOUNDED
@given(st.text(max_size=300))
def test_quadlet_reader_on_any_text(text: str) -> None:
    source = Path("/etc/hostctl/containers/fuzz.container")
    try:
        parse_quadlet(text, source)
    except DeclarationError as err:
        _refused_well(err, str(source))


@BOUNDED
@given(st.one_of(st.text(max_size=120), st.from_regex(
    r"([a-z0-9.-]{1,20}(:[0-9]{1,6})?/)?[a-zA-Z0-9._/-]{1,40}(:[\w.-]{1,20})?(@sha256:[0-9a-f]{0,70})?",
    fullmatch=True)))
def test_references(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ImageError as err:
        assert str(err)
    else:
        assert parse_reference(str(ref)) == ref  # what is accepted reads back the same


documents = st.one_of(
    st.binary(max_size=200),
    values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"schemaVersion": st.sampled_from([2, 1, "2"]),
                           "mediaType": st.sampled_from([
                               "application/vnd.oci.image.manifest.v1+json",
                               "application/vnd.oci.image.index.v1+json",
                               "application/vnd.docker.distribution.manifest.v2+json",
                               "text/plain"]),
                           "config": values, "layers": values, "manifests": values},
                          ).map(lambda v: json.dumps(v).encode()),
)


@BOUNDED
@given(documents, st.sampled_from([None, "application/vnd.oci.image.index.v1+json",
                                   "application/json", "x"]))
def test_manifests_and_indexes(data: bytes, content_type: str | None) -> None:
    try:
        parse_document(data, content_type, where="fuzz/image@sha256:0")
    except ImageError as err:
        _refused_well(err, "fuzz/image")


@BOUNDED
@given(st.one_of(st.text(max_size=300), values.map(
    lambda v: "\n".join(f"{k} = {json.dumps(x)}" for k, x in
                        (v.items() if isinstance(v, dict) else [("registries", v)])))))
def test_registries_conf(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registries.conf"
        path.write_text(text)
        try:
            regconf.load(files=[path])
        except ImageError as err:
            _refused_well(err, str(path))


@BOUNDED
@given(st.one_of(st.binary(max_size=200), values.map(lambda v: json.dumps(v).encode()),
                 st.dictionaries(st.text(max_size=12), values, max_size=3).map(
                     lambda auths: json.dumps({"auths": auths}).encode())))
def test_auth_json(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.json"
        path.write_bytes(data)
        try:
            load_auth_file(path)
        except ImageError as err:
            _refused_well(err, str(path))


parts = st.sampled_from(["a", "b", "..", ".", "", "etc", ".wh.a", ".wh..wh..opq", "c d"])
names = st.lists(parts, min_size=1, max_size=4).map("/".join) | st.sampled_from(
    ["/abs", "../../escape", "a/../../x", "./a", "/"])
members = st.tuples(names, st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                                            tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]),
                    names, st.binary(max_size=20), st.integers(0, 0o7777))


def _tar(entries: list[tuple[str, bytes, str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = kind, mode, target
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@settings(max_examples=EXAMPLES + 20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(members, max_size=8))
def test_layer_applier_never_writes_outside(entries: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        outside = base / "outside"
        (outside / "etc").mkdir(parents=True)
        (outside / "etc/passwd").write_text("root\n")
        dest = base / "store/snapshot"
        dest.mkdir(parents=True)
        tar = _tar(entries)
        blob = base / "blob"
        blob.write_bytes(tar)
        before = _tree(outside)
        try:
            apply_layer(blob, dest, diff_id="sha256:" + hashlib.sha256(tar).hexdigest(),
                        rootless=True, where="fuzz/layer")
        except ImageError as err:
            _refused_well(err, "fuzz/layer")
        assert _tree(outside) == before
        assert (outside / "etc/passwd").read_text() == "root\n"
        assert sorted(os.listdir(base)) == ["blob", "outside", "store"]
        assert os.listdir(base / "store") == ["snapshot"]
