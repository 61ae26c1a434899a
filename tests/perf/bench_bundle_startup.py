"""Start time of an installed or bundled Fireside: from launch to the main window's first paint.

What it measures
    The given command (the bundle's `fireside`, or `.venv/bin/python -m app` for comparison) is
    launched `--repeats` times, each with a new, empty data folder (`--data-dir`), so every launch is
    a first launch. The app's own hook (app/ui/startup_report.py) writes `{"shown": time.time()}` once
    the main window's first paint has finished and then quits (FIRESIDE_STARTUP_REPORT=FILE,
    FIRESIDE_QUIT_AFTER_SHOWN=1). Start time = shown - the time stamped right before the process was
    started. Nothing in the app is wrapped or changed, so this works on a frozen bundle.

    With --clean-env the command runs with only HOME, LANG and a PATH holding no Python (as when a
    desktop launches the bundle); with --compare CMD, CMD is launched too, alternating with the first
    command, so both see the same machine load.

Run
    .venv/bin/python tests/perf/bench_bundle_startup.py dist/fireside/fireside
    .venv/bin/python tests/perf/bench_bundle_startup.py dist/fireside/fireside \\
        --compare ".venv/bin/python -m app"
    .venv/bin/python tests/perf/bench_bundle_startup.py -- .venv/bin/python -m app

QT_QPA_PLATFORM is offscreen (no display needed). The target is a median of at most 1.5 s; the exit
code is 1 only when a launch failed to report (the time is printed, not enforced: this VM is noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 1.5


def clean_environment(home: str, empty_bin: Path) -> dict[str, str]:
    """An environment like a desktop launcher's, with no Python reachable through PATH."""
    env = {"HOME": home, "LANG": "C.UTF-8", "PATH": str(empty_bin)}
    keep = ["XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "FIRESIDE_MODEL_CACHE", "TMPDIR"]
    if sys.platform == "win32":  # Windows programs need these to start at all
        keep += ["SYSTEMROOT", "WINDIR", "USERPROFILE", "LOCALAPPDATA", "APPDATA", "TEMP", "TMP"]
    for name in keep:
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def launch_once(
    command: list[str], workdir: Path, env_base: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """One launch on a new data folder: seconds from launch to the first paint, and to the exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir))
    report = data_dir.parent / f"{data_dir.name}.json"
    env = dict(env_base)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        FIRESIDE_STARTUP_REPORT=str(report),
        FIRESIDE_QUIT_AFTER_SHOWN="1",
    )
    env.pop("FIRESIDE_DATA_DIR", None)
    launched = time.time()
    try:
        proc = subprocess.run(
            [*command, "--data-dir", str(data_dir)],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        returncode: int | None = proc.returncode
        stderr = proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stderr = None, (exc.stderr or b"").decode("utf-8", "replace") if exc.stderr else ""
    exited = time.time() - launched
    result: dict[str, Any] = {"exited": exited, "returncode": returncode, "stderr": stderr.strip()}
    try:
        result["shown"] = json.loads(report.read_text("utf-8"))["shown"] - launched
    except (OSError, ValueError, KeyError):
        result["shown"] = None
    return result


def _absolute(command: list[str]) -> list[str]:
    """The command with a relative program path made absolute (launches run in a temporary folder)."""
    program = command[0]
    if os.sep in program and not os.path.isabs(program):
        program = os.path.abspath(program)
    return [program, *command[1:]]


def fmt(value: float | None) -> str:
    """Seconds with three decimals, or a dash."""
    return "–" if value is None else f"{value:.3f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", nargs="+", help="the program to launch (and its leading arguments)")
    parser.add_argument("--repeats", type=int, default=5, help="launches per command (default 5)")
    parser.add_argument("--compare", action="append", default=[], metavar="CMD", help="also launch CMD")
    parser.add_argument("--clean-env", action="store_true", help="HOME, LANG and a PATH without Python only")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per launch")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Launch, time, print a table of each run and the medians."""
    args = parse_args(argv)
    commands = [_absolute(args.command), *(_absolute(shlex.split(c)) for c in args.compare)]
    labels = [" ".join(c) for c in commands]
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0] if hasattr(os, 'getloadavg') else 0:.2f}; "
        f"{args.repeats} launches each, "
        f"a new data folder per launch{', clean environment (no Python on PATH)' if args.clean_env else ''}"
    )
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory(prefix="fireside-bundle-startup-") as tmp:
        workdir = Path(tmp)
        empty_bin = workdir / "bin"
        empty_bin.mkdir()
        env = (
            clean_environment(os.environ.get("HOME", tmp), empty_bin) if args.clean_env else dict(os.environ)
        )
        width = max(len(label) for label in labels)
        print(f"{'run':<5}{'command':<{width + 2}}{'shown (s)':>11}{'exited (s)':>12}{'exit':>6}")
        for i in range(args.repeats):
            for command, label in zip(commands, labels, strict=True):
                result = launch_once(command, workdir, env, args.timeout)
                runs[label].append(result)
                print(
                    f"{i + 1:<5}{label:<{width + 2}}{fmt(result['shown']):>11}{fmt(result['exited']):>12}"
                    f"{result['returncode']!s:>6}",
                    flush=True,
                )
    failed = False
    summary: dict[str, Any] = {}
    print()
    print(f"{'median':<5}{'':<{width + 2}}{'shown (s)':>11}{'exited (s)':>12}")
    for label, results in runs.items():
        shown = [r["shown"] for r in results if r["shown"] is not None]
        exited = [r["exited"] for r in results]
        median_shown = statistics.median(shown) if shown else None
        summary[label] = {
            "median_shown_s": median_shown,
            "median_exited_s": statistics.median(exited),
            "runs": results,
        }
        print(f"{'':<5}{label:<{width + 2}}{fmt(median_shown):>11}{fmt(statistics.median(exited)):>12}")
        if len(shown) < len(results):
            failed = True
            print(f"  {len(results) - len(shown)} launch(es) of {label} never reported a first paint:")
            for line in sorted({ln for r in results for ln in r["stderr"].splitlines() if ln.strip()})[:20]:
                print(f"    {line}")
        elif median_shown is not None:
            verdict = "met" if median_shown <= TARGET_S else "MISSED"
            print(f"  target: window shown within {TARGET_S:g} s (median): {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2), "utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
