"""End-to-end CPU latency of the photo predictor, side by side with the seed model.

:func:`run_benchmark` times :class:`~scratchdet.inference.predictor.TiledPredictor` on whole
photos (decode included) with our detector, in ONNX Runtime and/or PyTorch eager, and the
seed-equivalent Cascade R-CNN X101 (whole photo resized to 1333x800, PyTorch eager) on the
same photos in the same process, so ratios are comparable on a shared machine. Latency does not
depend on the weights, so random/ImageNet weights serve when there is no trained checkpoint.

Per run: per-photo phases ``decode``, ``localise``, ``model``, ``merge``, ``total`` (mean,
median, p90 over all timed predictions), process CPU seconds per photo, photos/s and the peak
RSS (``VmHWM``, reset before each run where the kernel allows it): a :class:`RunTiming`.
:class:`BenchmarkResult` holds them all; its ``to_dict()`` is ``benchmark.json``.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from scratchdet.artifact import ModelSpec, model_label
from scratchdet.data.photos import collect_photos
from scratchdet.inference.export import export_onnx
from scratchdet.inference.load import LoadedModel, build_predictor, from_module, load_model
from scratchdet.inference.predictor import (
    DEFAULT_MAX_SINGLE,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    TiledPredictor,
)
from scratchdet.inference.torch_runtime import load_torch_model
from scratchdet.io import write_text_atomic
from scratchdet.models.factory import build_model

PHASES = ("decode", "localise", "model", "merge", "total")
SEED_PRESET = "cascade_rcnn_x101_32x4d_fpn"


@dataclass(frozen=True)
class BenchmarkSettings:
    """What to time (see ``scratchdet benchmark --help``)."""

    model: str = "lite0_fpn_fast"
    checkpoint: Path | None = None
    runtime: str = "onnx"
    scale: float = 1.0
    max_single: int | None = DEFAULT_MAX_SINGLE
    tile_size: int = DEFAULT_TILE_SIZE  # an untrained preset's tiling; a model file's wins
    min_overlap: int = DEFAULT_TILE_OVERLAP
    threads: int = 2
    repeat: int = 1
    warmup: int = 1
    seed_baseline: bool = True
    seed_photos: int | None = None
    seed_min_size: int = 800
    seed_max_size: int = 1333
    compare_runtimes: bool = True
    tta: tuple[str, ...] = ()  # test-time flips (inference.tta), one more pass each


def find_photos(spec: str | Path) -> list[Path]:
    """Photos named by a file, a folder (its .jpg/.jpeg/.png files) or a glob."""
    return collect_photos(spec)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean, median and 90th percentile (linear interpolation) of ``values``."""
    data = sorted(values)
    if not data:
        raise ValueError("no values to summarise")
    pos = 0.9 * (len(data) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    p90 = data[lo] + (data[hi] - data[lo]) * (pos - lo)
    return {"mean": statistics.fmean(data), "median": statistics.median(data), "p90": p90}


def peak_rss_mb() -> float:
    """The process's resident-set high-water mark in MiB (``VmHWM``, else ``getrusage``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); ``False`` if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class RunTiming:
    """The timings of one run over the photos; the seed's also carries its label, preset
    and weights."""

    phases: dict[str, dict[str, float]]  # phase -> mean / median / p90 seconds per photo
    s_per_photo: float
    cpu_s_per_photo: float
    photos_per_s: float
    mean_tiles: float
    mean_megapixels: float
    peak_rss_mb: float
    peak_rss_reset: bool
    predictions: int
    samples: list[dict[str, Any]]  # one per timed prediction
    label: str | None = None
    preset: str | None = None
    weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run as in ``benchmark.json`` (label, preset and weights first when set)."""
        named = ("label", "preset", "weights")
        timing = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in named}
        if self.label is None:
            return timing
        return {"label": self.label, "preset": self.preset, "weights": self.weights, **timing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunTiming:
        """A run of ``benchmark.json``."""
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


def time_predictor(
    predictor: TiledPredictor, photos: Sequence[Path], repeat: int = 1, warmup: int = 1
) -> RunTiming:
    """Predict every photo ``repeat`` times after ``warmup`` predictions of the first one."""
    for _ in range(warmup):
        predictor.predict(photos[0])
    peak_reset = reset_peak_rss()
    samples: list[dict[str, Any]] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        for photo in photos:
            c = time.process_time()
            pred = predictor.predict(photo)
            samples.append({
                **pred.timings, "cpu": time.process_time() - c, "tiles": len(pred.tiles),
                "pixels": sum((t[2] - t[0]) * (t[3] - t[1]) for t in pred.tiles),
                "detections": len(pred.detections), "photo": str(photo),
            })
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return RunTiming(
        phases={k: summarize([s[k] for s in samples]) for k in PHASES},
        s_per_photo=statistics.fmean(s["total"] for s in samples),
        cpu_s_per_photo=cpu / len(samples),
        photos_per_s=len(samples) / wall,
        mean_tiles=statistics.fmean(s["tiles"] for s in samples),
        mean_megapixels=statistics.fmean(s["pixels"] for s in samples) / 1e6,
        peak_rss_mb=peak_rss_mb(),
        peak_rss_reset=peak_reset,
        predictions=len(samples),
        samples=samples,
    )


@dataclass(frozen=True)
class BenchmarkResult:
    """Everything one benchmark measured; ``to_dict()`` gives ``benchmark.json``."""

    settings: BenchmarkSettings
    preset: str
    model_info: dict[str, Any]  # weights (and export_s when an ONNX file was exported)
    photos: tuple[str, ...]
    torch_version: str
    torch_threads: int
    runs: dict[str, RunTiming]  # runtime -> timing of our model
    seed: RunTiming | None  # the seed model (None: not timed)

    @property
    def s_per_photo(self) -> float:
        """Seconds per photo of our model in ``settings.runtime``."""
        return self.runs[self.settings.runtime].s_per_photo

    @property
    def seed_s_per_photo(self) -> float | None:
        return self.seed.s_per_photo if self.seed else None

    @property
    def speedup_vs_seed(self) -> float | None:
        return self.seed.s_per_photo / self.s_per_photo if self.seed else None

    @property
    def onnx_vs_torch(self) -> dict[str, float] | None:
        """PyTorch / ONNX Runtime time, end to end and of the model phase (both timed)."""
        if "onnx" not in self.runs or "torch" not in self.runs:
            return None
        onnx, eager = self.runs["onnx"], self.runs["torch"]
        return {"total": eager.s_per_photo / onnx.s_per_photo,
                "model": eager.phases["model"]["mean"] / onnx.phases["model"]["mean"]}

    @property
    def openvino_vs_onnx(self) -> dict[str, float] | None:
        """ONNX Runtime / OpenVINO time, end to end and of the model phase (both timed)."""
        if "onnx" not in self.runs or "openvino" not in self.runs:
            return None
        onnx, ov = self.runs["onnx"], self.runs["openvino"]
        return {"total": onnx.s_per_photo / ov.s_per_photo,
                "model": onnx.phases["model"]["mean"] / ov.phases["model"]["mean"]}

    @property
    def headline(self) -> str:
        """``scratchdet (preset, runtime): N.NN s/photo | seed ...: N.NN s/photo | R.Rx
        faster``."""
        text = (f"scratchdet ({self.preset}, {self.settings.runtime}): "
                f"{self.s_per_photo:.2f} s/photo")
        if self.seed:
            text += (f" | {self.seed.label}: {self.seed_s_per_photo:.2f} s/photo"
                     f" | {self.speedup_vs_seed:.1f}x faster")
        return text

    def named_runs(self) -> list[tuple[str, RunTiming]]:
        """``(name, timing)`` of each run of our model, then the seed's."""
        named = [(f"{self.preset} ({k})", v) for k, v in self.runs.items()]
        if self.seed:
            named.append((self.seed.label or SEED_PRESET, self.seed))
        return named

    def to_dict(self) -> dict[str, Any]:
        """``benchmark.json``."""
        data: dict[str, Any] = {
            "settings": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in self.settings.__dict__.items()},
            "preset": self.preset, "model_info": self.model_info, "photos": list(self.photos),
            "torch_version": self.torch_version, "torch_threads": self.torch_threads,
            "runs": {k: v.to_dict() for k, v in self.runs.items()},
            "seed": self.seed.to_dict() if self.seed else None,
            "s_per_photo": self.s_per_photo, "seed_s_per_photo": self.seed_s_per_photo,
            "speedup_vs_seed": self.speedup_vs_seed,
        }
        if self.onnx_vs_torch:
            data["onnx_vs_torch"] = self.onnx_vs_torch
        data["headline"] = self.headline
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkResult:
        """A ``benchmark.json`` read back (derived numbers are recomputed)."""
        raw = dict(data["settings"])
        raw["checkpoint"] = None if raw.get("checkpoint") is None else Path(raw["checkpoint"])
        raw["tta"] = tuple(raw.get("tta") or ())
        seed = RunTiming.from_dict(data["seed"]) if data.get("seed") else None
        return cls(BenchmarkSettings(**raw), data["preset"], dict(data["model_info"]),
                   tuple(data["photos"]), data["torch_version"], data["torch_threads"],
                   {k: RunTiming.from_dict(v) for k, v in data["runs"].items()}, seed)


def _our_model(settings: BenchmarkSettings) -> tuple[torch.nn.Module, ModelSpec, dict[str, Any]]:
    """The eager detector to time, its spec and how it was made."""
    if settings.checkpoint is None:
        model = build_model(settings.model).eval()
        spec = ModelSpec(settings.model, ("scratch",), (1,), tile_size=settings.tile_size,
                         tile_overlap=settings.min_overlap)
        return model, spec, {"weights": "ImageNet backbone, random heads"}
    model, spec = load_torch_model(settings.checkpoint)
    return model, spec, {"weights": str(settings.checkpoint)}


#: The runtime each one is compared with (``--compare-runtimes``).
PARTNER = {"onnx": "torch", "torch": "onnx", "openvino": "onnx"}


def _runtimes(settings: BenchmarkSettings) -> list[str]:
    if settings.runtime not in PARTNER:
        raise ValueError(f"runtime must be one of {', '.join(PARTNER)}, got "
                         f"{settings.runtime!r}")
    if not settings.compare_runtimes:
        return [settings.runtime]
    return [settings.runtime, PARTNER[settings.runtime]]


def _models(settings: BenchmarkSettings, workdir: Path) -> tuple[dict[str, LoadedModel],
                                                                 str, dict[str, Any]]:
    """``{runtime: loaded model}`` for our model; ONNX files are exported into ``workdir``."""
    if settings.checkpoint is not None and settings.checkpoint.suffix == ".onnx":
        runtimes = [r for r in _runtimes(settings) if r != "torch"]
        if settings.runtime == "torch":
            raise ValueError(f"{settings.checkpoint}: an ONNX file needs --runtime onnx or "
                             "openvino")
        out = {r: load_model(settings.checkpoint, r, threads=settings.threads) for r in runtimes}
        loaded = out[settings.runtime]  # its detector read the file's spec and graph facts
        label = model_label(loaded.spec, getattr(loaded.detector, "graph", None))
        return out, label, {"weights": str(settings.checkpoint)}
    model, spec, info = _our_model(settings)
    out = {}
    path = None
    for runtime in _runtimes(settings):
        if runtime == "torch":
            out[runtime] = from_module(model, spec)
            continue
        if path is None:  # one export serves ONNX Runtime and OpenVINO
            t = time.perf_counter()
            path = export_onnx(model, workdir / "model.onnx", spec)
            info["export_s"] = time.perf_counter() - t
        out[runtime] = load_model(path, runtime, threads=settings.threads)
    return out, model_label(spec), info


def _predictor(model: LoadedModel, settings: BenchmarkSettings) -> TiledPredictor:
    return build_predictor(model, batch_size=1, scale=settings.scale,
                           max_single=settings.max_single, tta=settings.tta)


def _seed_run(photos: Sequence[Path], settings: BenchmarkSettings) -> RunTiming:
    torch.manual_seed(0)
    model = build_model(  # random weights: latency does not depend on them
        SEED_PRESET, min_size=settings.seed_min_size, max_size=settings.seed_max_size
    ).eval()
    spec = ModelSpec(SEED_PRESET, ("scratch",), (1,), input_mode="resize",
                     resize=(settings.seed_max_size, settings.seed_min_size))
    # the seed decodes the whole photo at full size and resizes inside the model, as
    # MMDetection does: max_side above any photo keeps the decode at scale 1
    predictor = build_predictor(from_module(model, spec), max_side=1 << 20)
    subset = list(photos[: settings.seed_photos] if settings.seed_photos else photos)
    result = time_predictor(predictor, subset, repeat=1, warmup=min(settings.warmup, 1))
    del model, predictor
    label = f"seed cascade x101 @{settings.seed_max_size}x{settings.seed_min_size} (torch)"
    return replace(result, label=label, preset=SEED_PRESET, weights="random")


def run_benchmark(photos: Sequence[Path], settings: BenchmarkSettings) -> BenchmarkResult:
    """Time our detector (each runtime) and the seed on ``photos``."""
    if settings.repeat < 1 or settings.warmup < 0:
        raise ValueError(f"need repeat >= 1 and warmup >= 0, got {settings.repeat}, "
                         f"{settings.warmup}")
    if settings.threads:  # 0: torch's default (one per core)
        torch.set_num_threads(settings.threads)
    runs: dict[str, RunTiming] = {}
    with tempfile.TemporaryDirectory(prefix="scratchdet-bench-") as tmp:
        models, preset, info = _models(settings, Path(tmp))
        for runtime, loaded in models.items():
            predictor = _predictor(loaded, settings)
            runs[runtime] = time_predictor(predictor, photos, settings.repeat, settings.warmup)
        del models
    seed = _seed_run(photos, settings) if settings.seed_baseline else None
    return BenchmarkResult(settings, preset, info, tuple(str(p) for p in photos),
                           torch.__version__, torch.get_num_threads(), runs, seed)


def summary_lines(result: BenchmarkResult) -> list[str]:
    """The headline, the ONNX Runtime / PyTorch ratio and one line per run."""
    lines = [result.headline]
    ratio = result.onnx_vs_torch
    if ratio:
        lines.append(f"ONNX Runtime vs PyTorch eager ({result.preset}): "
                     f"{ratio['total']:.2f}x end to end, {ratio['model']:.2f}x model phase")
    ov = result.openvino_vs_onnx
    if ov:
        lines.append(f"OpenVINO vs ONNX Runtime ({result.preset}): "
                     f"{ov['total']:.2f}x end to end, {ov['model']:.2f}x model phase")
    for name, run in result.named_runs():
        ph = run.phases
        lines.append(
            f"  {name}: " + ", ".join(f"{k} {ph[k]['mean']:.3f}" for k in PHASES)
            + f" s (mean); p90 total {ph['total']['p90']:.2f} s; CPU {run.cpu_s_per_photo:.2f}"
            f" s/photo; {run.photos_per_s:.2f} photos/s; peak RSS {run.peak_rss_mb:.0f} MiB"
        )
    return lines


def to_markdown(result: BenchmarkResult) -> str:
    """benchmark.md: settings, the headline and a phase table (mean / median / p90 seconds)."""
    s = result.settings
    lines = [
        "# Speed benchmark", "",
        f"**{result.headline}**", "",
        f"{len(result.photos)} photos, repeat {s.repeat}, warm-up {s.warmup}, "
        f"{result.torch_threads} threads, scale {s.scale}, max_single {s.max_single}, "
        f"test-time flips {','.join(s.tta) or 'none'}, "
        f"tiles {s.tile_size}/{s.min_overlap}; weights: {result.model_info['weights']}; "
        "the seed model has random weights (latency does not depend on them).", "",
        "| run | " + " | ".join(f"{p} mean / med / p90 (s)" for p in PHASES)
        + " | CPU s/photo | photos/s | tiles | MP | peak RSS MiB |",
        "|---" * (len(PHASES) + 6) + "|",
    ]
    for name, run in result.named_runs():
        cells = [" / ".join(f"{run.phases[p][k]:.3f}" for k in ("mean", "median", "p90"))
                 for p in PHASES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {run.cpu_s_per_photo:.2f} | "
                     f"{run.photos_per_s:.2f} | {run.mean_tiles:.1f} | "
                     f"{run.mean_megapixels:.2f} | {run.peak_rss_mb:.0f} |")
    ratio = result.onnx_vs_torch
    if ratio:
        lines += ["", f"ONNX Runtime vs PyTorch eager: {ratio['total']:.2f}x end to end, "
                      f"{ratio['model']:.2f}x in the model phase."]
    return "\n".join(lines) + "\n"


def write_outputs(result: BenchmarkResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``benchmark.json`` and ``benchmark.md`` in ``out_dir`` (atomic writes)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js = write_text_atomic(out / "benchmark.json", json.dumps(result.to_dict(), indent=2) + "\n",
                           force=True)
    md = write_text_atomic(out / "benchmark.md", to_markdown(result), force=True)
    return js, md
