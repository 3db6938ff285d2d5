"""An exponential moving average (EMA) of the weights that takes over once it has started.

Lightning's ``EMAWeightAveraging`` copies the weights when fit begins and swaps that copy in
for validation, for every checkpoint and at the end of training, whether or not it has been
updated yet. With a late start every validation and epoch checkpoint before the start would
hold the untrained weights, and a start the schedule never reaches would end the run with
them. ``LateStartEMA`` uses the raw weights until the first update, places the start at a
fraction of the run's optimizer steps (so that it follows ``epochs`` and ``max_steps``) unless
a step is given, and refuses a given step at or after the run's last one.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging

from scratchdet.config import ConfigError


class LateStartEMA(EMAWeightAveraging):
    """EMA of the weights from optimizer step ``start_step`` (0-based) on, or, when that is
    None, from ``start_fraction`` of the run's optimizer steps on."""

    def __init__(self, decay: float, start_step: int | None, start_fraction: float = 0.5) -> None:
        super().__init__(decay=decay, update_starting_at_step=start_step)
        self.start_step, self.start_fraction = start_step, start_fraction

    def started(self) -> bool:
        """True once the average holds at least one update (before: the raw weights count)."""
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = trainer.estimated_stepping_batches  # inf for a run of unknown length
        if self.start_step is None:
            if math.isinf(total):
                raise ConfigError("ema_start_fraction needs a run of known length (epochs or "
                                  "max_steps over a sized dataset): set ema_start_step")
            self.update_starting_at_step = int(self.start_fraction * total)
        elif self.start_step >= total:
            raise ConfigError(
                f"ema_start_step {self.start_step} is at or after the last of this run's "
                f"{int(total)} training steps: the average would never start and the run would "
                "end with the untrained weights. Lower ema_start_step, leave it out to start at "
                f"ema_start_fraction of the steps ({self.start_fraction}: step "
                f"{int(self.start_fraction * total)}), or set ema_decay: null")

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.started():
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.started():
            super().on_validation_epoch_end(trainer, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if self.started():  # else a plain checkpoint of the raw weights
            super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if "current_model_state" in checkpoint:  # else the average starts afresh when due
            super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.started():
            super().on_train_end(trainer, pl_module)
