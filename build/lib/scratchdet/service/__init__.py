"""The inspection service (``scratchdet serve``): FastAPI app, history, web page, load script.

- ``app.create_app(inspector_or_factory, settings)``: the app; the model loads once, in a
  start-up thread (``/readyz`` is 503 until then).
- ``inspector``: the ``Inspector`` protocol the app depends on, ``inspector_from_model``
  (a real scratchdet checkpoint) and ``tiny_random_inspector`` (random weights, tests only).
- ``routes``: ``POST /v1/inspect``, ``GET|DELETE /v1/inspections[/{id}[/overlay|/photo]]``,
  ``/healthz``, ``/readyz``, the page at ``/`` and a local API page at ``/docs``.
- ``limits``: the concurrency gate (503 when busy, 504 on timeout) and the body-size guard.
- ``keys`` (API keys and web sessions, hashed in the history database), ``security`` (trusted
  hosts, same-origin writes, roles), ``signin`` (``/v1/session``), ``retention`` (pruning).
- ``loadtest``: ``python -m scratchdet.service.loadtest`` (loopback only).
"""
