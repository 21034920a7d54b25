"""The environment a worker process gets: only what Python and the maths libraries need.

The bot's own environment holds secrets (``DISCORD_TOKEN``, API keys); a worker
parses untrusted uploads, so it must not inherit them. Anything not named here
is dropped: an allow-list, not a deny-list, so a new secret is safe by default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# Python itself, the locale, temporary files and the time zone.
_PASS = frozenset({
    "PATH", "HOME", "LANG", "LANGUAGE", "TMPDIR", "TEMP", "TMP", "TZ",
    "PYTHONPATH", "PYTHONHASHSEED", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE",
    "VIRTUAL_ENV", "LD_LIBRARY_PATH", "SYSTEMROOT",
})
_PASS_PREFIXES = ("LC_",)
# BLAS/OpenMP pools: one thread each (see training.train_model), unless the host set them.
THREAD_VARS = (
    "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)


def child_environment(package_root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Allow-listed copy of ``base`` (default: os.environ) with ``package_root`` importable."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if k in _PASS or k.startswith(_PASS_PREFIXES) or k in THREAD_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root), env.get("PYTHONPATH")]))
    for var in THREAD_VARS:
        env.setdefault(var, "1")
    return env
