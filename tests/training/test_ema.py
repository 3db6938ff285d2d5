"""LateStartEMA places its start from the run's length, before any step (no training here)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scratchdet.config import ConfigError
from scratchdet.training.ema import LateStartEMA


def _start(callback: LateStartEMA, total: float) -> None:
    callback.on_train_start(SimpleNamespace(estimated_stepping_batches=total), None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fraction", "total", "step"),
                         [(0.5, 3072, 1536), (0.5, 1024, 512), (0.0, 10, 0), (0.75, 5, 3)])
def test_fraction_of_the_run_gives_the_start_step(fraction: float, total: int, step: int) -> None:
    callback = LateStartEMA(0.998, None, fraction)
    _start(callback, total)
    assert callback.update_starting_at_step == step
    assert callback.should_update(step_idx=step)
    if step > 0:
        assert not callback.should_update(step_idx=step - 1)


def test_given_step_wins_over_the_fraction_and_must_lie_inside_the_run() -> None:
    callback = LateStartEMA(0.998, 100, 0.5)
    _start(callback, 3072)
    assert callback.update_starting_at_step == 100
    with pytest.raises(ConfigError, match=r"ema_start_step 1536 is at or after the last of this "
                       r"run's 1024 training steps.*\(0.5: step 512\)"):
        _start(LateStartEMA(0.998, 1536, 0.5), 1024)


def test_run_of_unknown_length_needs_a_step() -> None:
    with pytest.raises(ConfigError, match="ema_start_fraction needs a run of known length"):
        _start(LateStartEMA(0.998, None, 0.5), float("inf"))
    given = LateStartEMA(0.998, 7, 0.5)
    _start(given, float("inf"))
    assert given.update_starting_at_step == 7
