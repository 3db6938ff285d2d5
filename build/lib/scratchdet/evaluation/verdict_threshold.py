"""The verdict threshold picked by an evaluation, for ``predict`` and ``serve``.

An evaluation run with a target recall (``scratchdet evaluate --target-recall R``; the demo and
``crossval`` use :data:`DEFAULT_TARGET_RECALL`) stores, per subgroup, the highest photo-score
threshold that still rejects that share of the scratched parts (``metrics.json``,
``part_level.groups.<group>.target``). :func:`threshold_from` reads it back so that the
pass/fail threshold of an inspection comes from held-out photos, not from a guess.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Target part-level recall of the demo's and cross-validation's evaluations.
DEFAULT_TARGET_RECALL = 0.95


def threshold_from(path: str | Path, group: str = "all") -> tuple[float, str]:
    """The picked threshold of ``group`` in an evaluation and how it was picked.

    Args:
        path: an evaluation folder (``eval/`` of evaluate, the demo or crossval) or its
            ``metrics.json``.
        group: the part-level subgroup (``all`` or a ``group_by`` value, e.g. ``white``).

    Raises:
        FileNotFoundError: no ``metrics.json`` there.
        ValueError: not an evaluation with a part level, no such group, no target recall set,
            or the target recall was not reachable.
    """
    file = Path(path)
    if file.is_dir():
        file = file / "metrics.json"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: not found (expected an evaluation folder or its "
                                "metrics.json)")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: not JSON ({err})") from None
    part = data.get("part_level") if isinstance(data, dict) else None
    if not isinstance(part, dict) or not isinstance(part.get("groups"), dict):
        raise ValueError(f"{file}: no part-level view (evaluate with --part-level and "
                         "--target-recall)")
    groups = part["groups"]
    if group not in groups:
        raise ValueError(f"{file}: no part-level group {group!r} (has: {', '.join(groups)})")
    target = groups[group].get("target")
    if not target:
        raise ValueError(f"{file}: group {group!r} has no target pick (evaluate with "
                         "--target-recall R)")
    if target.get("threshold") is None:
        raise ValueError(f"{file}: group {group!r}: {target.get('message', 'no threshold')}")
    return float(target["threshold"]), f"{file} ({group}): {target['message']}"


def resolve_threshold(explicit: float | None, source: str | Path | None, group: str = "all",
                      default: float = 0.5) -> tuple[float, str | None]:
    """The verdict threshold of a command: ``explicit``, else the pick read from ``source``
    (:func:`threshold_from`), else ``default``; with a note saying where a read one came from.

    Raises:
        ValueError: both ``explicit`` and ``source`` given, ``explicit`` outside [0, 1], or
            what :func:`threshold_from` raises.
    """
    if explicit is not None and source is not None:
        raise ValueError("give --threshold or --threshold-from, not both")
    if explicit is not None:
        if not 0 <= explicit <= 1:
            raise ValueError(f"--threshold {explicit} is outside [0, 1]")
        return float(explicit), None
    if source is None:
        return default, None
    value, how = threshold_from(source, group)
    return value, f"threshold {value:.4g} from {how}"
