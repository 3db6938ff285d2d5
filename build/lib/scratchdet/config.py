"""Flat YAML configs validated into Pydantic models.

Every config class derives from :class:`StrictConfig`, which rejects unknown keys; the
error names the file, the key, and the closest valid key. ``--set key=value`` overrides
are parsed with YAML rules (``--set lr=0.01``, ``--set flip=false``, ``--set sizes=[1,2]``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="StrictConfig")


class ConfigError(ValueError):
    """A config file or override that does not validate; the message says where and why."""


class StrictConfig(BaseModel):
    """Base for all configs: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _describe(cls: type[StrictConfig], err: ValidationError, source: str) -> str:
    valid = sorted(cls.model_fields)
    lines = [f"{source}: invalid {cls.__name__}"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(e["loc"][0]), valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            lines.append(f"  unknown key '{key}'{hint} (valid keys: {', '.join(valid)})")
        else:
            lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def validate_config(cls: type[T], data: Mapping[str, Any], source: str = "<config>") -> T:
    """Validate a mapping into ``cls``; raise :class:`ConfigError` with a readable message."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(_describe(cls, err, source)) from None


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values follow YAML rules."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' is not key=value (e.g. 'lr=0.01')")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


#: The configs shipped inside the package (``configs/`` in the repo links here).
PACKAGED_CONFIGS = Path(__file__).parent / "configs"


def resolve_config(path: str | Path) -> Path:
    """``path`` when it exists, else the packaged config of that file name (so that
    ``configs/cpu_fast.yaml`` or ``cpu_fast.yaml`` works from any folder), else ``path``."""
    given = Path(path)
    if given.is_file():
        return given
    packaged = PACKAGED_CONFIGS / given.name
    return packaged if packaged.is_file() else given


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = ()
) -> T:
    """Load a flat YAML file (optional; a packaged config by its name, see
    :func:`resolve_config`) and ``key=value`` overrides into ``cls``."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = resolve_config(path)
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            kind = type(loaded).__name__
            raise ConfigError(f"{path}: expected a mapping of key: value, got {kind}")
        data.update(loaded)
    over = parse_overrides(overrides)
    for key, value in over.items():
        _set_dotted(data, key, value)
    if over:
        source += " + --set " + ", ".join(over)
    return validate_config(cls, data, source)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``data[key] = value``; a dotted key (``tile_options.hard_background``) sets one entry
    of a nested mapping and keeps its other entries."""
    *parents, leaf = key.split(".")
    node = data
    for depth, part in enumerate(parents):
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, Mapping):
            where = ".".join(parents[: depth + 1])
            raise ConfigError(f"override '{key}': '{where}' is {child!r}, not a mapping")
        node[part] = dict(child)
        node = node[part]
    node[leaf] = value


def dump_config(cfg: StrictConfig) -> str:
    """The config as flat YAML (what is stored inside checkpoints and run folders)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
