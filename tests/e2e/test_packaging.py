"""Packaging: the desktop entry, the icon set, install.sh / uninstall.sh, and the PyInstaller specs.

The bundle itself is built and run by packaging/build.sh (minutes), never here: these tests check
everything around it in a few seconds. desktop-file-validate (Debian's desktop-file-utils) is
required: scripts/setup.sh installs it when it can, and a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
DESKTOP = ROOT / "resources" / "fireside.desktop"
ICONS = ROOT / "resources" / "icons" / "hicolor"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SPECS = (
    PACKAGING / "fireside.spec",
    PACKAGING / "macos" / "fireside-macos.spec",
    PACKAGING / "windows" / "fireside-windows.spec",
)


def desktop_file_validate() -> str:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.fail(
            "desktop-file-validate is not installed: install desktop-file-utils "
            "(Debian/Ubuntu: apt-get install desktop-file-utils; scripts/setup.sh does it when run as root)"
        )
    return tool


def validate(path: Path) -> None:
    """desktop-file-validate accepts the file with nothing to say (no error, warning or hint)."""
    result = subprocess.run([desktop_file_validate(), str(path)], capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"{path}:\n{output}"


def entry(path: Path) -> dict[str, str]:
    """The [Desktop Entry] group as a dict (enough for these files: no other groups, no locales)."""
    lines = path.read_text("utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if line and not line.startswith("#"))


# ----- the desktop entry ---------------------------------------------------------------------------


def test_desktop_entry_validates() -> None:
    validate(DESKTOP)


def test_desktop_entry_names_the_app_identity() -> None:
    keys = entry(DESKTOP)
    assert keys["Type"] == "Application"
    assert keys["Name"] == "Fireside"
    assert keys["Exec"] == "fireside"
    assert keys["Icon"] == "fireside"  # the icon theme name install.sh installs
    # The app calls QApplication.setDesktopFileName("fireside"): the window is matched to this entry.
    assert keys["StartupWMClass"] == "fireside"
    assert keys["Terminal"] == "false"


# ----- the icons -----------------------------------------------------------------------------------


def png_header(path: Path) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk."""
    data = path.read_bytes()[:33]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def first_pixel_alpha(path: Path) -> int:
    """Alpha of the top-left pixel of an 8-bit RGBA PNG (row 0's first pixel is stored unfiltered
    by every PNG filter, so decompressing the image data is enough)."""
    data, pos, idat = path.read_bytes(), 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return raw[1 + 3]  # filter byte, then R, G, B, A


@pytest.mark.parametrize("size", SIZES)
def test_every_icon_size_is_a_png_of_that_size(size: int) -> None:
    path = ICONS / f"{size}x{size}" / "apps" / "fireside.png"
    assert path.is_file(), f"missing {path.relative_to(ROOT)} (run packaging/make_icons.py)"
    width, height, depth, colour = png_header(path)
    assert (width, height) == (size, size)
    assert (depth, colour) == (8, 6), "8-bit RGBA expected"
    assert first_pixel_alpha(path) == 0, "the corner outside the rounded square must be transparent"


def test_scalable_icon_is_the_apps_svg() -> None:
    scalable = ICONS / "scalable" / "apps" / "fireside.svg"
    assert scalable.read_bytes() == (ROOT / "app" / "resources" / "fireside.svg").read_bytes(), (
        "resources/icons is out of date: run packaging/make_icons.py"
    )


def test_windows_ico_holds_the_pngs() -> None:
    """packaging/windows/fireside.ico: one PNG entry per size from 16 to 256 px, the committed PNGs."""
    data = (PACKAGING / "windows" / "fireside.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data, 0)
    assert (reserved, kind) == (0, 1)
    sizes = []
    for i in range(count):
        width, height, _, _, _, bpp, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        size = width or 256
        assert (width, height, bpp) == (width, height, 32) and width == height
        png = ICONS / f"{size}x{size}" / "apps" / "fireside.png"
        assert data[offset : offset + length] == png.read_bytes(), f"{size} px entry is out of date"
        sizes.append(size)
    assert sizes == [16, 24, 32, 48, 64, 128, 256]


# ----- install.sh / uninstall.sh -------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with its kind (and a link's target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        found[rel] = (
            f"link:{os.readlink(path)}" if path.is_symlink() else ("dir" if path.is_dir() else "file")
        )
    return found


@pytest.fixture(scope="module")
def tarball_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """make_tarball.sh run on a fake bundle (a shell script and a library link), then unpacked."""
    work = tmp_path_factory.mktemp("tarball")
    bundle = work / "dist" / "fireside"
    (bundle / "_internal").mkdir(parents=True)
    binary = bundle / "fireside"
    binary.write_text('#!/bin/sh\necho "fake fireside $*"\n')
    binary.chmod(0o755)
    (bundle / "_internal" / "libfake.so.1").write_bytes(b"\x7fELF fake")
    (bundle / "_internal" / "libfake.so").symlink_to("libfake.so.1")
    out = work / "out"
    result = subprocess.run(
        ["bash", str(PACKAGING / "make_tarball.sh"), str(bundle), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    tarballs = list(out.glob("fireside-*-linux-x86_64.tar.gz"))
    assert len(tarballs) == 1 and str(tarballs[0]) in result.stdout
    with tarfile.open(tarballs[0]) as archive:
        names = archive.getnames()
        archive.extractall(work / "unpacked", filter="tar")
    (top,) = (work / "unpacked").iterdir()
    assert top.name == tarballs[0].name.removesuffix(".tar.gz")
    for name in (
        "install.sh",
        "uninstall.sh",
        "README.txt",
        "fireside/fireside",
        "share/applications/fireside.desktop",
    ):
        assert f"{top.name}/{name}" in names
    assert (top / "fireside" / "_internal" / "libfake.so").is_symlink()
    return top


def run_script(script: Path, home: Path, xdg: Path | None) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if xdg is not None:
        env["XDG_DATA_HOME"] = str(xdg)
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder whose path needs quoting in a desktop entry (space, $, %, quote, backslash)."""
    path = tmp_path / "a home $with% 'odd\\chars"
    path.mkdir()
    return path


def test_install_puts_everything_in_the_xdg_folders_and_uninstall_removes_it(
    tarball_dir: Path, home: Path
) -> None:
    xdg = home / "xdg data"
    # Things of the user's that must survive: another app's menu entry and icon in the same folders.
    (xdg / "applications").mkdir(parents=True)
    (xdg / "applications" / "other.desktop").write_text(DESKTOP.read_text().replace("Fireside", "Other"))
    (xdg / "icons" / "hicolor" / "48x48" / "apps").mkdir(parents=True)
    (xdg / "icons" / "hicolor" / "48x48" / "apps" / "other.png").write_bytes(b"png")
    before = snapshot(home)

    result = run_script(tarball_dir / "install.sh", home, xdg)

    app = xdg / "fireside-app" / "fireside" / "fireside"
    assert app.is_file() and os.access(app, os.X_OK)
    assert (app.parent / "_internal" / "libfake.so").is_symlink()  # the bundle's links stay links
    link = home / ".local" / "bin" / "fireside"
    assert link.is_symlink() and Path(os.readlink(link)) == app
    ran = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "fake fireside --version"
    assert (xdg / "fireside-app" / "uninstall.sh").is_file()
    assert str(xdg / "applications" / "fireside.desktop") in result.stdout

    desktop = xdg / "applications" / "fireside.desktop"
    validate(desktop)
    keys = entry(desktop)
    assert keys["Icon"] == "fireside" and keys["StartupWMClass"] == "fireside"
    # Exec: the absolute path, quoted and escaped as the Desktop Entry spec says.
    quoted = re.sub(r'([\\"`$])', r"\\\1", str(app))  # for the quoting: \ " ` $ get a backslash
    assert keys["Exec"] == '"' + quoted.replace("\\", "\\\\").replace("%", "%%") + '"'  # then the string
    assert keys["TryExec"] == str(app).replace("\\", "\\\\")
    for size in SIZES:
        icon = xdg / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "fireside.png"
        assert icon.read_bytes() == (ICONS / f"{size}x{size}" / "apps" / "fireside.png").read_bytes()
    assert (xdg / "icons" / "hicolor" / "scalable" / "apps" / "fireside.svg").is_file()
    # XDG_DATA_HOME is respected: nothing in ~/.local/share, only the command link in ~/.local/bin.
    assert not (home / ".local" / "share").exists()
    assert sorted(p.name for p in (home / ".local").iterdir()) == ["bin"]

    run_script(xdg / "fireside-app" / "uninstall.sh", home, xdg)
    assert snapshot(home) == before


def test_install_twice_then_uninstall_from_the_tarball_leaves_nothing(tarball_dir: Path, home: Path) -> None:
    before = snapshot(home)
    run_script(tarball_dir / "install.sh", home, None)
    assert (home / ".local" / "share" / "applications" / "fireside.desktop").is_file()
    again = run_script(tarball_dir / "install.sh", home, None)  # an upgrade: the old one goes first
    assert "previous installation" in again.stdout
    validate(home / ".local" / "share" / "applications" / "fireside.desktop")
    run_script(tarball_dir / "uninstall.sh", home, None)
    assert snapshot(home) == before
    again = run_script(tarball_dir / "uninstall.sh", home, None)
    assert "not installed" in again.stdout


def test_install_leaves_someone_elses_command_alone(tarball_dir: Path, home: Path) -> None:
    bin_dir = home / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "fireside").write_text("#!/bin/sh\necho mine\n")
    before = snapshot(home)
    result = run_script(tarball_dir / "install.sh", home, None)
    assert "already exists" in result.stderr
    assert (bin_dir / "fireside").read_text() == "#!/bin/sh\necho mine\n"
    run_script(home / ".local" / "share" / "fireside-app" / "uninstall.sh", home, None)
    assert snapshot(home) == before


def test_shell_scripts_parse() -> None:
    for script in (PACKAGING / "linux" / "install.sh", PACKAGING / "linux" / "uninstall.sh"):
        subprocess.run(["sh", "-n", str(script)], check=True)
        assert script.stat().st_mode & stat.S_IXUSR, f"{script.name} must be executable"
    for script in (PACKAGING / "build.sh", PACKAGING / "make_tarball.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)


# ----- the PyInstaller specs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [*SPECS, PACKAGING / "spec_common.py", PACKAGING / "entry.py"], ids=lambda p: p.name
)
def test_spec_files_compile(path: Path) -> None:
    compile(path.read_text("utf-8"), str(path), "exec")


def test_llama_cpp_libraries_are_selected_by_soname() -> None:
    """The bundle keeps libX.so.N and links libX.so to it (llama_cpp opens libX.so with ctypes; the
    libraries need each other by soname), for every library llama-cpp-python ships."""
    sys.path.insert(0, str(PACKAGING))
    try:
        import spec_common
    finally:
        sys.path.remove(str(PACKAGING))
    files, links = spec_common._llama_files()
    names = {path.name for path in files}
    lib = spec_common._llama_lib_dir()
    for plain in lib.glob("lib*.so"):
        target = dict(links).get(plain.name)
        assert target in names, f"{plain.name} has no soname file to link to"
        assert spec_common._elf_needed(str(lib / target)) is not None
    assert "libllama.so" in dict(links)
    needed = spec_common._elf_needed(str(lib / dict(links)["libllama.so"]))
    assert any(name.startswith("libggml") for name in needed)
    assert all(name in names or not name.startswith(("libggml", "libllama")) for name in needed)


def test_entry_point_bundle_check_passes_unfrozen() -> None:
    """The probe build.sh runs inside the bundle works here too (llama.cpp, Qt plugins, keyring, …)."""
    env = dict(os.environ, FIRESIDE_BUNDLE_CHECK="1", QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, str(PACKAGING / "entry.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"ok": true' in result.stdout
