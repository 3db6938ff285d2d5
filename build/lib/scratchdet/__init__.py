"""scratchdet: find scratches on photos of painted parts and decide whether a part passes."""

__version__ = "0.1.0"
