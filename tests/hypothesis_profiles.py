"""Hypothesis profiles for every property test (fuzz and security): a fixed, reproducible budget in
the suite, a longer and random one for `scripts/fuzz.sh` (FIRESIDE_FUZZ=long).

The suite's profile is derandomized so that CI explores the same inputs on every run (a failure
there is a real finding, never luck); the long profile draws new inputs each time and keeps the
failures it finds in a database under ~/.cache/fireside/hypothesis, so they are tried first next time.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

#: Examples per property in the suite; FIRESIDE_FUZZ_EXAMPLES raises it for a longer run.
SUITE_EXAMPLES = 60

settings.register_profile(
    "suite",
    max_examples=SUITE_EXAMPLES,
    derandomize=True,
    database=None,
    # A time bound per input on the clock, generous because CI machines are shared: the tighter bound
    # is tests/fuzz/bounds.py's, on CPU time, which a busy machine does not inflate.
    deadline=15000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FIRESIDE_FUZZ_EXAMPLES", "2000")),
    database=DirectoryBasedExampleDatabase(Path.home() / ".cache" / "fireside" / "hypothesis"),
    deadline=15000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("FIRESIDE_FUZZ", "suite"))
