"""Process-wide settings read from the environment (documented in the README)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the folder that holds the scratch sample
#: (the layout of ``scratchdet data fetch-sample``: train/, val/, annotations/, ...).
SAMPLE_ENV = "SCRATCHDET_SAMPLE"
#: Where ``fetch-sample`` puts the sample when nothing else is said.
DEFAULT_SAMPLE_DIR = Path("data/scratch-sample")


def sample_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the sample folder: ``override``, else ``$SCRATCHDET_SAMPLE``, else the default."""
    if override is not None:
        return Path(override)
    env = os.environ.get(SAMPLE_ENV)
    return Path(env) if env else DEFAULT_SAMPLE_DIR
