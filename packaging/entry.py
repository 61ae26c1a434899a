"""The frozen app's entry point (PyInstaller runs this file as __main__): `fireside` with its usual options.

Two things happen before the app starts, both only in the frozen bundle:

* The bootloader prepends the bundle's library folder to LD_LIBRARY_PATH so the bundled Python and Qt
  are found. That must not leak into programs the app starts (xdg-open for "Show in folder", a browser
  for a link): they would load the bundle's libraries instead of the system's. The loader has already
  read the variable for this process, so the user's own value (LD_LIBRARY_PATH_ORIG) is put back for
  children; the bundle's own libraries are found through their RUNPATH and already-loaded sonames.
* `FIRESIDE_BUNDLE_CHECK=1 fireside` prints a JSON report of the parts that PyInstaller's import
  analysis cannot see (llama.cpp's ctypes libraries, Qt plugins, keyring backends found through entry
  points, Pygments lexers loaded by name, package metadata) and exits 0 only when all of them work.
  packaging/build.sh runs it on every build.
"""

from __future__ import annotations

import os
import sys

_LIBRARY_PATH_AT_START = os.environ.get("LD_LIBRARY_PATH")


def _restore_library_path() -> None:
    if not getattr(sys, "frozen", False):
        return
    bundle = getattr(sys, "_MEIPASS", None)
    for name in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"):
        original = os.environ.pop(f"{name}_ORIG", None)
        if original is not None:
            os.environ[name] = original
        elif bundle and os.environ.get(name, "").split(os.pathsep)[0] == bundle:
            os.environ.pop(name)  # set by the bootloader alone: the user had none


def _check(report: dict, name: str, probe) -> None:  # type: ignore[no-untyped-def, type-arg]
    try:
        report[name] = {"ok": True, **(probe() or {})}
    except Exception as exc:  # every failure is reported, not raised
        report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def bundle_check() -> int:
    """Exercise what the bundle must contain; print one JSON object; 0 when everything works."""
    import json

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    report: dict = {  # type: ignore[type-arg]
        "frozen": bool(getattr(sys, "frozen", False)),
        "executable": sys.executable,
        "python": sys.version.split()[0],
        "ld_library_path_at_start": _LIBRARY_PATH_AT_START,
        "ld_library_path_for_children": os.environ.get("LD_LIBRARY_PATH"),
    }

    def llama() -> dict:  # type: ignore[type-arg]
        from pathlib import Path

        import llama_cpp

        lib = Path(llama_cpp.__file__).parent / "lib"
        info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
        return {
            "version": llama_cpp.__version__,
            "lib": sorted(p.name for p in lib.iterdir()),
            "system_info": info.strip()[:200],
        }

    def metadata() -> dict:  # type: ignore[type-arg]
        import importlib.metadata as md

        names = ("llama-cpp-python", "keyring", "huggingface-hub", "gguf", "PySide6-Essentials", "fireside")
        return {"versions": {name: md.version(name) for name in names}}

    def keyring_backends() -> dict:  # type: ignore[type-arg]
        import keyring
        import keyring.backend

        from app.core.platform import secrets

        viable = sorted(f"{type(b).__module__}" for b in keyring.backend.get_all_keyring())
        # Every backend class registers itself when its module is imported through keyring's entry
        # points, viable here or not (Secret Service needs a D-Bus session, which a server lacks).
        registered = sorted({c.__module__ for c in getattr(keyring.backend.KeyringBackend, "_classes", ())})
        native = {"linux": "keyring.backends.SecretService", "darwin": "keyring.backends.macOS"}.get(
            sys.platform, "keyring.backends.Windows"
        )
        if native not in registered:
            raise RuntimeError(
                f"keyring's backends were not discovered (entry points missing?): {registered}"
            )
        return {
            "registered": registered,
            "viable": viable,
            "chosen": type(keyring.get_keyring()).__module__,
            "fireside_says": secrets.store_kind(),
        }

    def pygments() -> dict:  # type: ignore[type-arg]
        from pygments.lexers import get_lexer_by_name, guess_lexer

        names = ("python", "rust", "javascript", "bash", "c++", "json", "yaml", "go", "sql")
        lexers = {name: type(get_lexer_by_name(name)).__name__ for name in names}
        return {"lexers": lexers, "guessed": type(guess_lexer("#!/bin/sh\necho hi\n")).__name__}

    def text_stack() -> dict:  # type: ignore[type-arg]
        import gguf
        import huggingface_hub
        import jinja2.sandbox
        import qasync
        from markdown_it import MarkdownIt

        template = jinja2.sandbox.ImmutableSandboxedEnvironment().from_string(
            "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
        )
        return {
            "jinja2": template.render(messages=[{"role": "user", "content": "hi"}]),
            "markdown": MarkdownIt("commonmark").enable("table").render("*a*").strip(),
            "gguf": gguf.GGUFReader.__name__,
            "huggingface_hub": huggingface_hub.__version__,
            "qasync": qasync.__name__,
        }

    def math() -> dict:  # type: ignore[type-arg]
        # ziamath's STIX font and latex2mathml's symbol table are data files the bundle must hold.
        from app.ui.common.math_html import math_html

        formula = math_html(r"\frac{a}{b}", False, "#000000", 11.0)
        if "<img" not in formula:
            raise RuntimeError(f"formulas are not typeset: {formula}")
        return {"typeset_bytes": len(formula)}

    def qt() -> dict:  # type: ignore[type-arg]
        from pathlib import Path

        from PySide6.QtCore import QLibraryInfo
        from PySide6.QtGui import QIcon, QImageReader
        from PySide6.QtWidgets import QApplication, QStyleFactory

        app = QApplication.instance() or QApplication([sys.argv[0]])
        plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
        platforms = sorted(p.name for p in (plugins / "platforms").iterdir())
        formats = sorted(bytes(f.data()).decode() for f in QImageReader.supportedImageFormats())
        from importlib.resources import files

        svg = files("app").joinpath("resources/fireside.svg")
        icon = QIcon(str(svg))
        pixmap = icon.pixmap(64, 64)
        if "svg" not in formats or pixmap.isNull():
            raise RuntimeError(f"no SVG support (image formats: {formats})")
        needed = {
            "linux": {"libqxcb.so", "libqwayland.so", "libqoffscreen.so"},
            "darwin": {"libqcocoa.dylib", "libqoffscreen.dylib"},
        }.get(sys.platform, {"qwindows.dll", "qoffscreen.dll"})
        if not needed <= set(platforms):
            raise RuntimeError(f"missing platform plugins {sorted(needed - set(platforms))}: {platforms}")
        return {
            "platform": app.platformName(),
            "platforms": platforms,
            "image_formats": formats,
            "styles": QStyleFactory.keys(),
            "icon_64px": [pixmap.width(), pixmap.height()],
        }

    for name, probe in (
        ("llama_cpp", llama),
        ("metadata", metadata),
        ("keyring", keyring_backends),
        ("pygments", pygments),
        ("text_stack", text_stack),
        ("math", math),
        ("qt", qt),
    ):
        _check(report, name, probe)
    report["ok"] = all(value.get("ok") for value in report.values() if isinstance(value, dict))
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def main() -> int:
    """Run Fireside (or, with FIRESIDE_BUNDLE_CHECK=1, the bundle check)."""
    _restore_library_path()
    if os.environ.get("FIRESIDE_BUNDLE_CHECK") == "1":
        return bundle_check()
    from app.cli import main as fireside_main

    return fireside_main()


if __name__ == "__main__":
    raise SystemExit(main())
