"""Settings of the inspection service (the ``scratchdet serve`` options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

#: Upload content types the service accepts, with the PIL formats each may decode as.
#: Untyped uploads (none or application/octet-stream) are sniffed as JPEG or PNG.
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("JPEG",),
    "image/png": ("PNG",),
    "application/octet-stream": ("JPEG", "PNG"),
    "": ("JPEG", "PNG"),
}


class ServiceSettings(BaseModel):
    """Where history and photos go, and the limits every request is held to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_url: str = Field("sqlite:///scratchdet-service/history.db", description="SQLAlchemy URL")
    storage_dir: Path = Field(Path("scratchdet-service/photos"), description="uploaded photos")
    max_upload_bytes: int = Field(40 * 1024 * 1024, gt=0, description="largest photo file")
    max_pixels: int = Field(40_000_000, gt=0, description="largest width*height")
    max_concurrency: int = Field(2, gt=0, description="inspections running at once")
    queue_timeout_s: float = Field(30.0, ge=0, description="wait for a slot, then 503")
    request_timeout_s: float = Field(120.0, gt=0, description="inspection time limit, then 504")
    default_threshold: float = Field(0.5, ge=0, le=1, description="score threshold")
