"""llama.cpp's own tools (llama-bench, llama-server) built from the llama.cpp that the installed
llama-cpp-python vendors, for benchmarks that compare Fireside with them in the same run.

`build_tool(target)` downloads the sdist of the installed llama-cpp-python version (`pip download
--no-deps --no-binary :all:`), extracts it under ~/.cache/fireside/llama-tools/src, configures
`vendor/llama.cpp` with CMake (Release, GGML_NATIVE=ON like llama-cpp-python's own pip build on this
machine, OpenMP left at its default ON like that build, static libraries, no curl/OpenSSL/tests/
examples) and builds only `target`. The binary is copied to ~/.cache/fireside/llama-tools/
TARGET-VERSION, where `cached_tool` finds it. Needs cmake, a C/C++ compiler and PyPI; about 5
minutes per tool on 2 cores (10 for llama-server). A second call only rebuilds what changed.

    .venv/bin/python tests/perf/llama_tools.py llama-server     # build one now
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TOOLS_DIR = Path.home() / ".cache" / "fireside" / "llama-tools"


def llama_cpp_python_version() -> str:
    """The installed llama-cpp-python's version (without importing it: no shared library loaded)."""
    from importlib.metadata import version

    return version("llama-cpp-python")


def cached_tool(target: str, version: str | None = None) -> Path | None:
    """The `target` binary `build_tool` left in the cache for this llama-cpp-python, if any."""
    path = TOOLS_DIR / f"{target}-{version or llama_cpp_python_version()}"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def build_tool(target: str, version: str | None = None, jobs: int = 2) -> Path:
    """Build llama.cpp's `target` (llama-bench, llama-server) from the vendored llama.cpp; its path."""
    version = version or llama_cpp_python_version()
    src_root = TOOLS_DIR / "src"
    source = src_root / f"llama_cpp_python-{version}"
    build = TOOLS_DIR / "build"
    if not (source / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        src_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 f"llama-cpp-python=={version}", "-d", tmp],
                check=True,
            )  # fmt: skip
            (sdist,) = Path(tmp).glob("llama_cpp_python-*.tar.gz")
            with tarfile.open(sdist) as tar:
                tar.extractall(src_root, filter="data")
    cache = build / "CMakeCache.txt"
    if cache.is_file() and str(source / "vendor" / "llama.cpp") not in cache.read_text(errors="replace"):
        shutil.rmtree(build)  # configured for another version's source
    configure = ["cmake", "-S", str(source / "vendor" / "llama.cpp"), "-B", str(build)]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    configure += [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DGGML_NATIVE=ON",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_BUILD_TOOLS=ON",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        f"-DLLAMA_BUILD_SERVER={'ON' if target == 'llama-server' else 'OFF'}",
        "-DLLAMA_BUILD_APP=OFF",
    ]
    subprocess.run(configure, check=True)
    subprocess.run(["cmake", "--build", str(build), "--target", target, "-j", str(jobs)], check=True)
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    made = TOOLS_DIR / f"{target}-{version}"
    shutil.copy2(build / "bin" / target, made)
    return made


if __name__ == "__main__":
    print(build_tool(sys.argv[1] if len(sys.argv) > 1 else "llama-server"))
