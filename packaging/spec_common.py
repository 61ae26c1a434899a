"""What the PyInstaller specs (Linux, macOS, Windows) share: the parts import analysis cannot see.

Imported by packaging/fireside.spec, packaging/macos/fireside-macos.spec and
packaging/windows/fireside-windows.spec while PyInstaller runs them; nothing here runs in the app.
"""

from __future__ import annotations

import importlib.util
import posixpath
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Qt modules Fireside does not use (it uses QtCore, QtGui, QtWidgets, QtNetwork's local sockets and,
#: through the icon, QtSvg).
_UNUSED_QT = (
    "Qt3DAnimation Qt3DCore Qt3DExtras Qt3DInput Qt3DLogic Qt3DRender QtAxContainer QtBluetooth",
    "QtCharts QtConcurrent QtDataVisualization QtDBus QtDesigner QtGraphs QtGraphsWidgets QtHelp",
    "QtHttpServer QtLocation QtMultimedia QtMultimediaWidgets QtNfc QtOpenGL QtOpenGLWidgets QtPdf",
    "QtPdfWidgets QtPositioning QtPrintSupport QtQml QtQuick QtQuick3D QtQuickControls2 QtQuickTest",
    "QtQuickWidgets QtRemoteObjects QtScxml QtSensors QtSerialBus QtSerialPort QtSpatialAudio QtSql",
    "QtStateMachine QtSvgWidgets QtTest QtTextToSpeech QtUiTools QtWebChannel QtWebEngineCore",
    "QtWebEngineQuick QtWebEngineWidgets QtWebSockets QtWebView QtXml",
)

#: Python modules Fireside never imports that hooks or optional imports would otherwise pull in.
EXCLUDES = [
    "tkinter",
    "_tkinter",
    "turtle",
    "test",
    "unittest.test",
    "lib2to3",
    "pydoc_data",
    "IPython",
    "matplotlib",
    "pandas",
    "scipy",
    "torch",
    "tensorflow",
    "PIL",
    "pytest",
    "pip",
    "setuptools",
    "pkg_resources",
    "PyInstaller",
    # huggingface_hub's Xet transfer client (11 MB): Fireside downloads model files with http_get and
    # fetches only model cards with hf_hub_download; without hf_xet huggingface_hub uses plain HTTP.
    "hf_xet",
    *(f"PySide6.{name}" for name in " ".join(_UNUSED_QT).split()),
]

#: Qt plugins (paths under the plugins folder, as regular expressions) that are dropped: input
#: methods and formats that pull in QtQuick/QtPdf, platforms for kiosks (eglfs, linuxfb, vnc),
#: SQL drivers, TLS backends and printing, none of which Fireside uses.
QT_PLUGIN_DROP = [
    r"platforminputcontexts/libqtvirtualkeyboardplugin",
    r"imageformats/(libqpdf|libqtiff|libqtga|libqwbmp|libqicns)",
    r"imageformats/(qpdf|qtiff|qtga|qwbmp)\.dll",
    r"platforms/(libqeglfs|libqlinuxfb|libqvnc|libqvkkhrdisplay|libqminimalegl)",
    r"egldeviceintegrations/",
    r"wayland-graphics-integration-server/",
    r"generic/",
    r"sqldrivers/",
    r"tls/",
    r"networkinformation/",
    r"printsupport/",
    r"qmltooling/",
    r"designer/",
]

#: Distributions whose metadata is read at run time (importlib.metadata): keyring's entry points
#: name its backends; the About dialog and huggingface_hub ask for versions.
METADATA = [
    "fireside",
    "llama-cpp-python",
    "keyring",
    "huggingface-hub",
    "gguf",
    "jinja2",
    "markdown-it-py",
    "pygments",
    "qasync",
    "platformdirs",
    "numpy",
    "PySide6-Essentials",
    "shiboken6",
    "httpx",
    "tqdm",
    "filelock",
    "fsspec",
    "packaging",
    "pyyaml",
]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed in the Python running PyInstaller ({sys.executable})")
    return Path(next(iter(spec.submodule_search_locations)))


def _llama_lib_dir() -> Path:
    lib = _package_dir("llama_cpp") / "lib"
    if not lib.is_dir():
        raise SystemExit(f"{lib} is missing: llama-cpp-python was built without its shared libraries")
    return lib


def _llama_files() -> tuple[list[Path], list[tuple[str, str]]]:
    """(libraries to collect, (link name, target) pairs) for llama_cpp/lib.

    On Linux the wheel holds each library three times (libllama.so, .so.0, .so.0.5.0: copies, not
    links). ctypes opens libX.so and the libraries need each other by soname (libX.so.0), so the
    soname file is collected and libX.so becomes a symlink to it; the fully versioned name is unused.
    """
    lib = _llama_lib_dir()
    files: list[Path] = []
    links: list[tuple[str, str]] = []
    if sys.platform.startswith("linux"):
        for plain in sorted(lib.glob("lib*.so")):
            soname = next(
                (
                    p
                    for p in sorted(lib.glob(plain.name + ".*"))
                    if re.fullmatch(r"\.\d+", p.name[len(plain.name) :])
                ),
                None,
            )
            if soname is not None and soname.is_file():
                files.append(soname)
                links.append((plain.name, soname.name))
            elif plain.is_file():
                files.append(plain)
    elif sys.platform == "darwin":
        files = [p for p in sorted(lib.iterdir()) if p.name.endswith((".dylib", ".metal")) and p.is_file()]
    else:
        files = [p for p in sorted(lib.iterdir()) if p.name.lower().endswith(".dll") and p.is_file()]
    if not files:
        raise SystemExit(f"no shared libraries found in {lib}")
    return files, links


def llama_binaries() -> list[tuple[str, str]]:
    """llama.cpp's libraries, to llama_cpp/lib inside the bundle (llama_cpp opens them from there)."""
    return [(str(path), "llama_cpp/lib") for path in _llama_files()[0]]


def datas() -> list[tuple[str, str]]:
    """The app's own resources plus the metadata listed in METADATA (where installed)."""
    from PyInstaller.utils.hooks import collect_data_files, copy_metadata

    found: list[tuple[str, str]] = [(str(ROOT / "app" / "resources"), "app/resources")]
    # Formulas: ziamath's STIX font (with ziafont) and latex2mathml's symbol table are read at run time.
    for package in ("ziamath", "ziafont", "latex2mathml"):
        found += collect_data_files(package)
    for dist in METADATA:
        try:
            found += copy_metadata(dist)
        except Exception:  # an optional dependency that is not installed (PackageNotFoundError)
            if dist in ("fireside", "llama-cpp-python", "keyring", "huggingface-hub"):
                raise
    return found


def hiddenimports() -> list[str]:
    """Modules imported by name at run time."""
    from PyInstaller.utils.hooks import collect_submodules

    return [
        *collect_submodules("app"),
        *collect_submodules("keyring.backends"),
        *collect_submodules("uvicorn"),  # the API server: protocols and loops are imported by name
        "PySide6.QtSvg",  # the SVG image format and icon engine plugins link QtSvg
        "PySide6.QtNetwork",  # the single-instance socket
    ]


#: Linux: GTK's stack is left to the system. Qt's GTK platform theme (native dialogs and colours on
#: GNOME) links GTK, which PyInstaller never bundles, so its other dependencies must come from the
#: same (system) GTK installation too: bundled copies from the build machine could clash with it.
GTK_STACK = re.compile(
    r"lib(gtk-3|gdk-3|atk-1\.0|atk-bridge-2\.0|atspi|cairo|cairo-gobject|pango-1\.0|pangocairo-1\.0"
    r"|pangoft2-1\.0|gdk_pixbuf-2\.0|harfbuzz|epoxy|gio-2\.0|gobject-2\.0|gmodule-2\.0)\.so(\.\d+)*"
)


def _elf_needed(path: str) -> list[str]:
    """DT_NEEDED entries of a 64-bit little-endian ELF file (empty for anything else)."""
    import struct

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return []
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 0x20)[0], *struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((vaddr, offset, filesz))
        elif p_type == 2:
            dynamic = (offset, filesz)
    if dynamic is None:
        return []
    needed, strtab = [], None
    for pos in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, pos)
        if tag == 0:
            break
        if tag == 1:
            needed.append(value)
        elif tag == 5:
            strtab = value
    if strtab is None:
        return []
    base = next((off + strtab - va for va, off, size in loads if va <= strtab < va + size), None)
    if base is None:
        return []
    return [data[base + n : data.index(b"\0", base + n)].decode() for n in needed]


def _dest(entry: tuple) -> str:  # type: ignore[type-arg]
    return entry[0].replace("\\", "/")


def prune(analysis: object) -> None:
    """Drop the Qt plugins in QT_PLUGIN_DROP (and, on Linux, GTK's stack) from an Analysis, then the
    libraries that only those needed, and the symlinks left pointing at nothing. Adds llama.cpp's
    libX.so -> libX.so.N links."""
    binaries, datas_ = analysis.binaries, analysis.datas  # type: ignore[attr-defined]
    plugin = re.compile(r"(^|/)plugins/(" + "|".join(QT_PLUGIN_DROP) + ")")
    removed = [e for e in binaries if plugin.search(_dest(e))]
    if sys.platform.startswith("linux"):
        removed += [e for e in binaries if "/" not in _dest(e) and GTK_STACK.fullmatch(_dest(e))]
    gone = {_dest(e) for e in removed}
    binaries[:] = [e for e in binaries if _dest(e) not in gone]
    if sys.platform.startswith("linux"):
        # Libraries only the removed files needed: repeat until nothing more falls away.
        eligible = {name for e in removed for name in _elf_needed(e[1])}
        while True:
            needed = {name for e in binaries for name in _elf_needed(e[1])}
            orphans = [
                e
                for e in binaries
                if (basename := _dest(e).rsplit("/", 1)[-1]) in eligible
                and basename not in needed
                and ("/" not in _dest(e) or _dest(e).startswith("PySide6/Qt/lib/"))
            ]
            if not orphans:
                break
            eligible |= {name for e in orphans for name in _elf_needed(e[1])}
            gone |= {_dest(e) for e in orphans}
            binaries[:] = [e for e in binaries if _dest(e) not in gone]
    # Symlinks (PyInstaller links top-level sonames to their real place) whose target is gone.
    present = {_dest(e) for e in binaries} | {_dest(e) for e in datas_}
    datas_[:] = [
        e
        for e in datas_
        if e[2] != "SYMLINK"
        or posixpath.normpath(posixpath.join(posixpath.dirname(_dest(e)), e[1].replace("\\", "/"))) in present
    ]
    for name, target in _llama_files()[1]:
        datas_.append((f"llama_cpp/lib/{name}", target, "SYMLINK"))


def strip_python(bundle: Path) -> None:
    """Strip debug symbols from libpython and the standard library's extension modules in a built
    bundle (Linux; a pyenv- or source-built libpython is 23 MB with them, 5.5 MB without). Only these:
    stripping wheels' patched libraries (numpy's OpenBLAS) breaks them. Skipped without binutils."""
    import shutil
    import subprocess

    tool = shutil.which("strip")
    if not sys.platform.startswith("linux") or tool is None:
        return
    internal = bundle / "_internal"
    targets = [p for p in internal.glob("libpython3*.so*") if p.is_file() and not p.is_symlink()]
    targets += sorted(internal.glob("python3*/lib-dynload/*.so"))
    for path in targets:
        subprocess.run([tool, "--strip-unneeded", str(path)], check=True)
