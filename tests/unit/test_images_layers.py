"""Layer application: overlay-format output and refusal of every known breakout.

Tars are built in memory. Tests that chown, mknod or set trusted.* xattrs need root;
they are skipped (with the reason) for other users.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import zstandard

from hostctl.errors import ImageError
from hostctl.images.layers import apply_layer

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for chown/mknod/xattrs")

Entry = tuple[tarfile.TarInfo, bytes | None]


def reg(name: str, data: bytes = b"", *, mode: int = 0o644, uid: int = 0, gid: int = 0,
        mtime: int = 1_600_000_000, xattrs: dict[str, str] | None = None) -> Entry:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, mtime
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def dir_(name: str, *, mode: int = 0o755, uid: int = 0, mtime: int = 1_500_000_000) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.mtime = tarfile.DIRTYPE, mode, uid, mtime
    return info, None


def sym(name: str, target: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def link(name: str, target: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def chardev(name: str, major: int, minor: int) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor, info.mode = tarfile.CHRTYPE, major, minor, 0o666
    return info, None


def make_tar(entries: Iterable[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def apply(tmp_path: Path, entries: Iterable[Entry] | bytes, *, name: str = "layer",
          compress: str = "gzip", rootless: bool = False, lowers: tuple[Path, ...] = (),
          max_size: int = 1 << 30, diff_id: str | None = None) -> Path:
    raw = entries if isinstance(entries, bytes) else make_tar(entries)
    compressors: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress, "none": bytes, "zstd": zstandard.ZstdCompressor().compress}
    blob = compressors[compress](raw)
    (tmp_path / f"{name}.blob").write_bytes(blob)
    dest = tmp_path / name
    dest.mkdir()
    apply_layer(tmp_path / f"{name}.blob", dest,
                diff_id=diff_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
                lowers=lowers, rootless=rootless, max_size=max_size, where="test-layer")
    return dest


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the layer with a file that must never change."""
    canary = tmp_path / "outside"
    canary.mkdir()
    (canary / "victim").write_text("original")
    os.chmod(canary / "victim", 0o600)
    return canary


def untouched(canary: Path) -> None:
    assert sorted(p.name for p in canary.iterdir()) == ["victim"]
    assert (canary / "victim").read_text() == "original"
    st = (canary / "victim").stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_nlink == 1


# -- ordinary content ---------------------------------------------------------------


@needs_root
def test_files_dirs_owners_modes_and_times(tmp_path: Path) -> None:
    root = apply(tmp_path, [
        dir_("etc", mode=0o755, mtime=1_400_000_000),
        reg("etc/hostname", b"box\n", mode=0o640, uid=1000, gid=2000),
        reg("/usr/bin/prog", b"#!", mode=0o4755, uid=0, gid=50),
        dir_("ro", mode=0o555),
        reg("ro/file", b"x"),
    ])
    st = os.stat(root / "etc/hostname")
    assert (root / "etc/hostname").read_bytes() == b"box\n"
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 2000, 0o640)
    assert st.st_mtime == 1_600_000_000
    assert os.stat(root / "etc").st_mtime == 1_400_000_000  # set after its children
    prog = os.stat(root / "usr/bin/prog")
    assert stat.S_IMODE(prog.st_mode) == 0o4755 and prog.st_gid == 50  # setuid survives chown
    assert stat.S_IMODE(os.stat(root / "ro").st_mode) == 0o555
    assert (root / "ro/file").read_bytes() == b"x"
    assert stat.S_IMODE(os.stat(root / "usr").st_mode) == 0o755  # implicit parent


@needs_root
def test_whiteouts_become_char_devices_and_opaque_xattrs(tmp_path: Path) -> None:
    root = apply(tmp_path, [
        dir_("etc"), reg("etc/.wh.motd"), dir_("var/cache"), reg("var/cache/.wh..wh..opq"),
        reg("var/cache/new", b"n"),
    ])
    wh = os.lstat(root / "etc/motd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(root / "var/cache", "trusted.overlay.opaque") == b"y"
    assert "etc/.wh.motd" not in tree(root) and "var/cache/.wh..wh..opq" not in tree(root)
    assert (root / "var/cache/new").read_bytes() == b"n"


def test_rootless_opaque_uses_user_xattr_and_skips_devices(tmp_path: Path) -> None:
    root = apply(tmp_path, [
        dir_("d"), reg("d/.wh..wh..opq"), chardev("dev/null", 1, 3), reg("d/f", b"1"),
    ], rootless=True)
    assert os.getxattr(root / "d", "user.overlay.opaque") == b"y"
    assert not (root / "dev/null").exists()
    assert (root / "d/f").read_bytes() == b"1"


@needs_root
def test_device_nodes_rootful(tmp_path: Path) -> None:
    root = apply(tmp_path, [chardev("dev/null", 1, 3), chardev("dev/fake-whiteout", 0, 0)])
    st = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert not os.path.lexists(root / "dev/fake-whiteout")  # would act as a whiteout


@needs_root
def test_directory_replacing_a_whiteout_is_opaque(tmp_path: Path) -> None:
    root = apply(tmp_path, [reg(".wh.opt"), dir_("opt"), reg("opt/new", b"1")])
    assert stat.S_ISDIR(os.lstat(root / "opt").st_mode)
    assert os.getxattr(root / "opt", "trusted.overlay.opaque") == b"y"


def test_hardlink_to_file_in_layer_and_symlinks_kept(tmp_path: Path) -> None:
    root = apply(tmp_path, [
        reg("bin/busybox", b"BB", mode=0o755), link("bin/sh", "bin/busybox"),
        sym("bin/ls", "busybox"), sym("abs", "/etc/passwd"),
    ], rootless=True)
    assert os.stat(root / "bin/sh").st_ino == os.stat(root / "bin/busybox").st_ino
    assert os.readlink(root / "bin/ls") == "busybox"
    assert os.readlink(root / "abs") == "/etc/passwd"


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none"])
def test_compressions(tmp_path: Path, compress: str) -> None:
    root = apply(tmp_path, [reg("a", b"A" * 1000)], compress=compress, rootless=True)
    assert (root / "a").read_bytes() == b"A" * 1000


def test_multi_member_gzip_with_empty_members(tmp_path: Path) -> None:
    raw = make_tar([reg("a", b"A" * 5000), reg("b", b"B")])
    blob = gzip.compress(raw[:3000]) + gzip.compress(b"") * 500 + gzip.compress(raw[3000:])
    (tmp_path / "blob").write_bytes(blob)
    (tmp_path / "out").mkdir()
    apply_layer(tmp_path / "blob", tmp_path / "out", rootless=True,
                diff_id="sha256:" + hashlib.sha256(raw).hexdigest())
    assert (tmp_path / "out/b").read_bytes() == b"B"


@needs_root
def test_xattrs_kept_but_trusted_refused(tmp_path: Path) -> None:
    root = apply(tmp_path, [reg("f", b"", xattrs={"user.note": "hi"})])
    assert os.getxattr(root / "f", "user.note") == b"hi"
    with pytest.raises(ImageError, match=r"trusted\.overlay\.opaque is reserved"):
        apply(tmp_path, [reg("g", b"", xattrs={"trusted.overlay.opaque": "y"})], name="l2")


# -- lower layers ---------------------------------------------------------------------


def test_parent_symlink_in_lower_layer_is_followed_inside_root(tmp_path: Path,
                                                                outside: Path) -> None:
    lower = apply(tmp_path, [dir_("usr/lib"), sym("lib", "usr/lib"),
                             sym("escape", str(outside))], name="lower", rootless=True)
    upper = apply(tmp_path, [reg("lib/x.so", b"so"), reg("escape/victim", b"pwned")],
                  name="upper", rootless=True, lowers=(lower,))
    assert (upper / "usr/lib/x.so").read_bytes() == b"so"  # usr-merge
    assert not os.path.lexists(upper / "lib")
    assert (upper / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned"
    untouched(outside)


@needs_root
def test_implicit_parent_copies_lower_directory_attributes(tmp_path: Path) -> None:
    lower = apply(tmp_path, [dir_("tmp", mode=0o1777, mtime=1_234_567_890)], name="lower")
    upper = apply(tmp_path, [reg("tmp/.wh.old"), reg("tmp/new", b"")], name="upper",
                  lowers=(lower,))
    st = os.stat(upper / "tmp")
    assert stat.S_IMODE(st.st_mode) == 0o1777 and st.st_mtime == 1_234_567_890


def test_lower_whiteout_hides_lower_symlink(tmp_path: Path) -> None:
    bottom = apply(tmp_path, [sym("lib", "usr/lib"), dir_("usr/lib")], name="l1", rootless=True)
    middle = apply(tmp_path, [reg(".wh.lib")], name="l2", rootless=True, lowers=(bottom,))
    top = apply(tmp_path, [reg("lib/x", b"x")], name="l3", rootless=True,
                lowers=(middle, bottom))
    assert (top / "lib/x").read_bytes() == b"x"
    assert not (top / "usr").exists()


# -- breakouts and faults -------------------------------------------------------------


def test_dotdot_names_are_refused(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(ImageError, match=r"'\.\.' in a path"):
        apply(tmp_path, [reg("../outside/victim", b"pwned")], rootless=True)
    untouched(outside)


def test_absolute_names_are_taken_relative(tmp_path: Path, outside: Path) -> None:
    root = apply(tmp_path, [reg(str(outside / "victim"), b"pwned")], rootless=True)
    assert (root / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned"
    untouched(outside)


def test_symlink_parent_escape_stays_inside(tmp_path: Path, outside: Path) -> None:
    root = apply(tmp_path, [sym("d", str(outside)), reg("d/victim", b"pwned"),
                            sym("rel", "../../../../../../.."), reg("rel/x", b"x")],
                 rootless=True)
    untouched(outside)
    assert (root / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned"
    assert (root / "x").read_bytes() == b"x"  # ".." clamped at the root
    assert os.readlink(root / "d") == str(outside)


@needs_root
def test_hardlink_out_of_root_is_refused(tmp_path: Path, outside: Path) -> None:
    for target in ("../../outside/victim", str(outside / "victim")):
        with pytest.raises(ImageError, match=r"hardlink|'\.\.'"):
            apply(tmp_path, [link("x", target)], name=f"l{len(target)}")
    untouched(outside)


def test_hardlink_through_symlink_parent_and_to_symlink(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(ImageError, match="not a file or symlink in this layer"):
        apply(tmp_path, [sym("d", str(outside)), link("x", "d/victim")], rootless=True)
    root = apply(tmp_path, [sym("s", str(outside / "victim")), link("h", "s")], name="l2",
                 rootless=True)
    assert os.readlink(root / "h") == str(outside / "victim")  # a link to the symlink itself
    untouched(outside)


@needs_root
def test_no_chmod_or_chown_through_symlinks(tmp_path: Path, outside: Path) -> None:
    root = apply(tmp_path, [
        sym("f", str(outside / "victim")), reg("f", b"new", mode=0o777, uid=4242),
        sym("d", str(outside)), dir_("d", mode=0o777, uid=4242),
        sym("s", str(outside / "victim")),
    ])
    untouched(outside)
    assert stat.S_IMODE(os.stat(outside).st_mode) != 0o777
    assert os.stat(outside).st_uid != 4242
    assert (root / "f").read_bytes() == b"new" and not (root / "f").is_symlink()
    assert (root / "d").is_dir() and not (root / "d").is_symlink()


def test_root_replaced_by_symlink_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="root must be a directory"):
        apply(tmp_path, [sym(".", "/"), reg("etc/x", b"x")], rootless=True)


@needs_root
def test_whiteout_under_symlink_parent_stays_inside(tmp_path: Path, outside: Path) -> None:
    root = apply(tmp_path, [sym("d", str(outside)), reg("d/.wh.victim")])
    untouched(outside)
    inside = os.lstat(root / str(outside).lstrip("/") / "victim")
    assert stat.S_ISCHR(inside.st_mode) and inside.st_rdev == 0


def test_bare_whiteout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="invalid whiteout"):
        apply(tmp_path, [reg(".wh.")], rootless=True)


def test_diff_id_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not the DiffID"):
        apply(tmp_path, [reg("a", b"a")], rootless=True, diff_id="sha256:" + "0" * 64)


def test_garbage_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a valid tar"):
        apply(tmp_path, os.urandom(4096).replace(b"\x1f\x8b", b"xx").replace(b"\x28\xb5", b"xx"),
              compress="none", rootless=True)


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    raw = make_tar([reg("a", os.urandom(200_000))])
    (tmp_path / "blob").write_bytes(gzip.compress(raw)[:-5000])
    (tmp_path / "out").mkdir()
    with pytest.raises(ImageError, match="corrupt compressed data"):
        apply_layer(tmp_path / "blob", tmp_path / "out", rootless=True,
                    diff_id="sha256:" + hashlib.sha256(raw).hexdigest())


def test_truncated_tar_is_a_clear_error(tmp_path: Path) -> None:
    raw = make_tar([reg("a", b"A" * 100_000)])
    with pytest.raises(ImageError, match=r"not a valid tar|unexpected end"):
        apply(tmp_path, raw[:50_000], compress="none", rootless=True,
              diff_id="sha256:" + hashlib.sha256(raw).hexdigest())


def test_decompression_bomb_is_bounded(tmp_path: Path) -> None:
    raw = make_tar([reg("zeros", bytes(8 * 1024 * 1024))])
    with pytest.raises(ImageError, match="expands to more than"):
        apply(tmp_path, raw, rootless=True, max_size=1024 * 1024)


def test_huge_pax_header_is_refused(tmp_path: Path) -> None:
    info, data = reg("a", b"")
    info.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}
    with pytest.raises(ImageError, match="metadata header"):
        apply(tmp_path, [(info, data)], rootless=True)


# -- cost -----------------------------------------------------------------------------

_COUNTED = ("lstat", "stat", "open", "getxattr", "setxattr", "listxattr", "readlink", "mkdir",
            "unlink", "rmdir", "scandir", "listdir", "mknod", "chmod", "chown", "utime")


def _operations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dirs: int,
                files_below: int) -> int:
    """File system calls made applying a layer that marks DIRS lower directories (each
    holding FILES_BELOW files) opaque and adds one file to each."""
    lower_entries: list[Entry] = []
    for number in range(dirs):
        lower_entries.append(dir_(f"tree/d{number}"))
        lower_entries += [reg(f"tree/d{number}/f{k}", b"") for k in range(files_below)]
    tag = f"{dirs}-{files_below}"
    lower = apply(tmp_path, lower_entries, name=f"lower-{tag}", rootless=True)
    upper_entries = [entry for number in range(dirs) for entry in (
        reg(f"tree/d{number}/.wh..wh..opq"), reg(f"tree/d{number}/new", b"n"))]
    calls = [0]
    with monkeypatch.context() as patch:
        for name in _COUNTED:
            real = getattr(os, name)

            def counted(*args: object, _real: Callable[..., object] = real,
                        **kwargs: object) -> object:
                calls[0] += 1
                return _real(*args, **kwargs)

            patch.setattr(os, name, counted)
        upper = apply(tmp_path, upper_entries, name=f"upper-{tag}", rootless=True,
                      lowers=(lower,))
    assert os.getxattr(upper / "tree/d0", "user.overlay.opaque") == b"y"
    assert sorted(os.listdir(upper / "tree/d0")) == ["new"]
    return calls[0]


def test_opaque_markers_over_a_large_lower_tree_stay_linear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each marker costs the same however big the hidden lower directory is, and N markers
    cost about N times one (work per marker proportional to the lower tree, or to the
    markers seen so far, would show here as a ratio near 4 or 16)."""
    small = _operations(tmp_path, monkeypatch, dirs=50, files_below=10)
    big_lower = _operations(tmp_path, monkeypatch, dirs=50, files_below=40)
    many = _operations(tmp_path, monkeypatch, dirs=200, files_below=10)
    assert big_lower <= small * 1.1
    assert many <= small * 4.5


# VmHWM is this process's own peak (ru_maxrss also keeps the forking parent's, which is
# pytest's whole footprint late in a full run).
_APPLY_AND_MEASURE = """
import sys
from pathlib import Path
from hostctl.images.layers import apply_layer
apply_layer(Path(sys.argv[1]), Path(sys.argv[2]), diff_id=sys.argv[3], rootless=True)
with open("/proc/self/status") as status:
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024)
"""


def test_memory_stays_bounded_for_a_big_layer(tmp_path: Path) -> None:
    """A 160 MB layer (a few MB compressed) applies in well under its own size of memory:
    nothing reads a whole file, blob or decompressed stream into memory."""
    size = 160 * 1024 * 1024
    info = tarfile.TarInfo("big")
    info.size = size
    raw = hashlib.sha256()
    with gzip.open(tmp_path / "blob", "wb", compresslevel=1) as out:
        header = info.tobuf(tarfile.PAX_FORMAT)
        for block in (header, *(bytes(1 << 20) for _ in range(size >> 20)), bytes(1024)):
            out.write(block)
            raw.update(block)
    (tmp_path / "out").mkdir()
    done = subprocess.run([sys.executable, "-c", _APPLY_AND_MEASURE, str(tmp_path / "blob"),
                           str(tmp_path / "out"), "sha256:" + raw.hexdigest()],
                          capture_output=True, text=True, check=True)
    assert (tmp_path / "out/big").stat().st_size == size
    # The bound for a whole pull (150 MB). A layer read into memory anywhere would
    # exceed it (160 MB alone).
    assert int(done.stdout) < 150, f"peak {done.stdout.strip()} MB applying a 160 MB layer"
