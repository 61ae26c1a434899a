"""About Fireside: its version and those of llama.cpp, Qt and Python, and where its files are."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import PySide6
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from app import __version__
from app.core.platform import logs, paths
from app.ui.common.accessible import describe_buttons
from app.ui.common.theme import TITLE_SCALE, scaled_font


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Name -> version of Fireside and what it runs on (llama_cpp is not imported for this)."""
    return {
        "Fireside": __version__,
        "llama.cpp (llama-cpp-python)": _version("llama-cpp-python"),
        "Qt": f"{qVersion()} (PySide6 {PySide6.__version__})",
        "Python": f"{platform.python_version()} ({sys.platform}, {platform.machine()})",
    }


def folders(models_folder: str | None = None) -> dict[str, str]:
    """Where Fireside keeps its files."""
    return {
        "Data folder": str(paths.data_dir()),
        "Models folder": models_folder or str(paths.models_dir()),
        "Log file": str(logs.log_file()),
    }


class AboutDialog(QDialog):
    """Versions and folders, selectable, with links that open the folders."""

    def __init__(self, models_folder: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About Fireside")
        layout = QVBoxLayout(self)
        title = QLabel(f"Fireside {__version__}")
        title.setFont(scaled_font(title.font(), TITLE_SCALE, bold=True))
        layout.addWidget(title)
        blurb = QLabel(
            "Run large language models on your own computer. Everything stays on this machine: Fireside "
            "goes online only to search and download models from the Hugging Face Hub when you ask."
        )
        blurb.setWordWrap(True)
        layout.addWidget(blurb)
        form = QFormLayout()
        for name, value in versions().items():
            label = QLabel(value)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setObjectName("aboutVersion")
            form.addRow(name, label)
        for name, value in folders(models_folder).items():
            target = value if name != "Log file" else str(logs.log_file().parent)
            link = QLabel(f"<a href='{QUrl.fromLocalFile(target).toString()}'>{value}</a>")
            link.setObjectName("aboutFolder")
            link.setWordWrap(True)
            link.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
            link.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))
            form.addRow(name, link)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(buttons)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)

    def text(self) -> str:
        """Everything shown, as plain text (for bug reports and tests)."""
        lines = [f"{k}: {v}" for k, v in versions().items()]
        return "\n".join(lines + [f"{k}: {v}" for k, v in folders().items()])
