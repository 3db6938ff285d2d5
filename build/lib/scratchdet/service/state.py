"""What the app and its routes share: the service state and the static files' folder."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from scratchdet.service.config import ServiceSettings
from scratchdet.service.db import History
from scratchdet.service.inspector import Inspector
from scratchdet.service.keys import KeyStore
from scratchdet.service.limits import InspectionGate

STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class ServiceState:
    """What the routes share: settings, history, keys, the gate and (once loaded) the
    inspector."""

    settings: ServiceSettings
    history: History
    keys: KeyStore
    gate: InspectionGate
    inspector: Inspector | None = None
    load_error: str | None = None
    loaded: threading.Event = field(default_factory=threading.Event)
