"""The hardware panel: llama.cpp's backend, whether it can offload, each GPU's memory, RAM and CPU threads."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.system.hardware import GPU_INSTALL_COMMANDS, Hardware
from app.core.values.units import format_size
from app.ui.common.accessible import describe_buttons


class HardwareDialog(QDialog):
    """Shows a Hardware reading; Refresh asks for a new one (free memory changes as programs run)."""

    refreshRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hardwareDialog")
        self.setWindowTitle("Hardware")
        self.setMinimumWidth(680)
        layout = QVBoxLayout(self)
        self.body = QWidget()
        self.form = QFormLayout(self.body)
        layout.addWidget(self.body)
        self.cpu_only = QWidget()
        cpu_layout = QVBoxLayout(self.cpu_only)
        cpu_layout.setContentsMargins(0, 8, 0, 0)
        explain = QLabel(
            "This copy of llama.cpp was built for the CPU only, so models run on the processor, whatever "
            "graphics card this computer has. To use a GPU, reinstall llama-cpp-python with a GPU backend "
            "(a C/C++ compiler and the GPU's toolkit are needed; the README's “GPU acceleration” explains):"
        )
        explain.setWordWrap(True)
        commands = "\n".join(f"# {name}\n{cmd}" for name, cmd in GPU_INSTALL_COMMANDS.items())
        self.commands = QPlainTextEdit(commands)
        self.commands.setObjectName("gpuInstallCommands")
        self.commands.setReadOnly(True)
        self.commands.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.commands.setFixedHeight(120)
        copy = QPushButton("Copy commands")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(commands))
        cpu_layout.addWidget(explain)
        cpu_layout.addWidget(self.commands)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(copy)
        cpu_layout.addLayout(row)
        layout.addWidget(self.cpu_only)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        describe_buttons(buttons)
        refresh = buttons.addButton("Refresh", QDialogButtonBox.ButtonRole.ActionRole)
        refresh.setObjectName("hardwareRefresh")
        refresh.clicked.connect(self.refreshRequested)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.show_hardware(None)

    def show_hardware(self, hardware: Hardware | None) -> None:
        """Fill the panel (None: still asking)."""
        while self.form.rowCount():
            self.form.removeRow(0)
        if hardware is None:
            self.form.addRow(QLabel("Asking llama.cpp…"))
            self.cpu_only.hide()
            return

        def add(label: str, value: str, name: str) -> None:
            text = QLabel(value)
            text.setObjectName(name)
            text.setWordWrap(True)
            self.form.addRow(label, text)

        add("Backend", hardware.backend, "hardwareBackend")
        add("GPU offload", "supported" if hardware.gpu_offload else "not in this build", "hardwareOffload")
        if hardware.devices:
            for i, device in enumerate(hardware.devices):
                add(
                    f"GPU {i}",
                    f"{device.description or device.name} — {format_size(device.free_bytes)} free of "
                    f"{format_size(device.total_bytes)}",
                    f"hardwareGpu{i}",
                )
        else:
            add("GPUs", "none that llama.cpp can use", "hardwareGpus")
        add(
            "RAM",
            f"{format_size(hardware.ram_available)} available of {format_size(hardware.ram_total)}",
            "hardwareRam",
        )
        add("CPU threads", str(hardware.cpu_threads), "hardwareThreads")
        self.cpu_only.setVisible(not hardware.gpu_offload)
