"""Render Fireside's SVG icon to the PNG sizes desktops and installers use.

    .venv/bin/python packaging/make_icons.py [--svg PATH] [--out DIR]

Writes, under DIR (default: resources/icons):

    hicolor/<N>x<N>/apps/fireside.png   for N in 16, 24, 32, 48, 64, 128, 256, 512
    hicolor/scalable/apps/fireside.svg  a copy of the SVG

laid out like the freedesktop icon theme, so install.sh copies the tree as it is into
~/.local/share/icons/hicolor, and packaging/windows/fireside.ico (16-256 px, PNG-compressed entries,
written here so the Windows build needs no icon tool). The PNGs and the .ico are committed
(packaging needs no Qt to use them); run this again after changing the SVG. Rendering uses QtSvg
with antialiasing on a transparent image and needs no display (the offscreen platform is forced).

    --sizes 1024 --out DIR --no-ico    other sizes only (packaging/macos/make_icns.sh: the 1024 px
                                       image of the .icns)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "app" / "resources" / "fireside.svg"
OUT = ROOT / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO = ROOT / "packaging" / "windows" / "fireside.ico"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
NAME = "fireside"


def render(svg: Path, out: Path, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Render `svg` at every size into the hicolor tree under `out`; the files written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # QImage text/fonts need one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG for QtSvg")
    written: list[Path] = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(0)  # fully transparent
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        target = out / "hicolor" / f"{size}x{size}" / "apps" / f"{NAME}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        # ARGB32 (not premultiplied) is what PNG stores; convert explicitly for exact edge colours.
        if not image.convertToFormat(QImage.Format.Format_ARGB32).save(str(target), "PNG"):
            raise SystemExit(f"could not write {target}")
        written.append(target)
    scalable = out / "hicolor" / "scalable" / "apps" / f"{NAME}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(svg, scalable)
    written.append(scalable)
    return written


def write_ico(pngs: dict[int, bytes], target: Path) -> Path:
    """A Windows .ico holding each PNG as it is (PNG entries: Windows Vista and later)."""
    import struct

    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, blobs = b"", b""
    for size, data in sorted(pngs.items()):
        side = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset + len(blobs))
        blobs += data
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(header + entries + blobs)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: render the icon set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--svg", type=Path, default=SVG, help=f"source SVG (default: {SVG.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"output folder (default: {OUT.relative_to(ROOT)})"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="pixel sizes to render")
    parser.add_argument("--no-ico", action="store_true", help=f"do not write {ICO.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    written = render(args.svg, args.out, tuple(args.sizes))
    if not args.no_ico:
        pngs = {
            size: (args.out / "hicolor" / f"{size}x{size}" / "apps" / f"{NAME}.png") for size in ICO_SIZES
        }
        missing = sorted(size for size, path in pngs.items() if not path.is_file())
        if missing:
            raise SystemExit(f"the .ico needs the {missing} px images: render them too (or pass --no-ico)")
        written.append(write_ico({size: path.read_bytes() for size, path in pngs.items()}, ICO))
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
