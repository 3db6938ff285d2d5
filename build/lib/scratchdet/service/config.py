"""Settings of the inspection service (the ``scratchdet serve`` options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scratchdet.service.passrate import DEFAULT_SHIFTS, check_shifts

#: Upload content types the service accepts, with the PIL formats each may decode as.
#: Untyped uploads (none or application/octet-stream) are sniffed as JPEG or PNG. PIL's JPEG
#: opener also opens multi-picture JPEGs (format "MPO", written by many cameras): they count
#: as JPEGs and their first frame is inspected (``imaging.decode_photo``).
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("JPEG",),
    "image/png": ("PNG",),
    "application/octet-stream": ("JPEG", "PNG"),
    "": ("JPEG", "PNG"),
}

#: Host names the service answers by default (``--allowed-host`` adds more; ``*`` allows any).
DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1", "testserver")


class ServiceSettings(BaseModel):
    """Where history and photos go, who may do what, and the limits every request is held to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_url: str = Field("sqlite:///scratchdet-service/history.db", description="SQLAlchemy URL")
    storage_dir: Path = Field(Path("scratchdet-service/photos"), description="uploaded photos")
    max_upload_bytes: int = Field(40 * 1024 * 1024, gt=0, description="largest photo file")
    max_pixels: int = Field(16_000_000, gt=0, description="largest width*height")
    max_concurrency: int = Field(2, gt=0, description="inspections running at once")
    queue_timeout_s: float = Field(30.0, ge=0, description="wait for a slot, then 503")
    request_timeout_s: float = Field(120.0, gt=0, description="inspection time limit, then 504")
    default_threshold: float = Field(0.5, ge=0, le=1, description="score threshold")
    threshold_min: float | None = Field(
        None, ge=0, le=1, description="lowest threshold a non-admin may send"
    )
    threshold_max: float | None = Field(
        None, ge=0, le=1, description="highest threshold a non-admin may send"
    )
    auth: bool = Field(True, description="API keys required (off only on a loopback address)")
    allowed_hosts: tuple[str, ...] = Field(DEFAULT_HOSTS, description="accepted Host names")
    session_hours: float = Field(12.0, gt=0, description="lifetime of a web sign-in")
    db_busy_timeout_s: float = Field(2.0, ge=0, description="wait on a locked database, then 503")
    retry_after_s: int = Field(2, ge=1, description="Retry-After of a 503 for a busy database")
    keep_days: float | None = Field(None, gt=0, description="drop inspections older than this")
    max_photos: int | None = Field(None, gt=0, description="keep at most this many inspections")
    shift_starts: tuple[int, ...] = Field(
        DEFAULT_SHIFTS, description="local hours the shifts start at (pass rate per shift)")

    @field_validator("shift_starts")
    @classmethod
    def _shifts(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return check_shifts(value)

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ServiceSettings:
        low, high = self.threshold_bounds
        if low > high:
            raise ValueError(f"threshold_min {low} is above threshold_max {high}")
        return self

    @property
    def threshold_bounds(self) -> tuple[float, float]:
        """The thresholds a viewer/operator may send: [min, max] (the default alone if unset)."""
        low = self.default_threshold if self.threshold_min is None else self.threshold_min
        high = self.default_threshold if self.threshold_max is None else self.threshold_max
        return low, high
