"""Training with Lightning, driven by one flat YAML config.

- :class:`scratchdet.training.config.TrainConfig`: the config (``load_config(TrainConfig,
  path, overrides)``); see ``configs/seed_cascade_x101.yaml`` and ``configs/cpu_fast.yaml``.
- :func:`scratchdet.training.fit.fit` ``(cfg) -> FitResult`` (``run_dir``,
  ``best_checkpoint``, ``last_checkpoint``, ``model_path``, ``metrics``, ``global_step``,
  ``world_size``); ``scratchdet train CONFIG --set key=value --resume CKPT`` on the CLI.
- Every checkpoint and ``model.pt`` carries the model spec (:mod:`scratchdet.artifact`);
  :func:`scratchdet.inference.load.load_model` runs them, without importing Lightning.

Multi-GPU / multi-node: ``strategy: ddp`` with ``devices`` and ``num_nodes`` (Lightning's
launcher starts one process per device; other nodes need ``MASTER_ADDR``, ``MASTER_PORT``,
``NODE_RANK`` and the same ``run_name``).
"""
