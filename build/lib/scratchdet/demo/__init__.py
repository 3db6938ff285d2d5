"""``scratchdet demo``: the whole pipeline on the sample photos in one command.

- :func:`scratchdet.demo.runner.run_demo` ``(DemoSettings, log) -> DemoResult``: stats,
  training (``short``/``full`` schedule, ``final`` on train + val), val prediction, evaluation
  and analysis, benchmark, synthesis preview, HTML report, ``summary.json``.
- :mod:`scratchdet.demo.pipeline`: the steps, one function each.
- :mod:`scratchdet.demo.sections`: report sections (model, loss curve, benchmark).
"""
