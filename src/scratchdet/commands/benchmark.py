"""``scratchdet export MODEL`` (ONNX) and ``scratchdet benchmark MODEL IMAGES`` (CPU latency)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from scratchdet.commands import options
from scratchdet.commands.extras import require_train_extra
from scratchdet.structures import DEFAULT_MAX_SINGLE, DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE


def export(
    checkpoint: Path = options.model_argument("A scratchdet model.pt or training .ckpt."),
    out: Path = options.out_option(Path("model.onnx"), "ONNX file to write."),
    trace_size: int = typer.Option(
        512, "--trace-size", help="Side of the square image the graph is traced on."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
    int8: bool = typer.Option(
        False, "--int8", help="Quantise to int8 (static, calibrated on --calibrate photos; "
        "layers at stride <= 4 stay float; model calls about 1.4x faster than float on a "
        "CPU with VNNI; measured for lite0_fpn_fast and the Lite0 and Lite1 cascades: "
        "docs/speed.md)."),
    calibrate: list[str] | None = typer.Option(
        None, "--calibrate", metavar="SOURCE", help="With --int8: training photos, folders, "
        "globs or .txt lists to calibrate on (never the photos you evaluate on)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Export a trained detector to ONNX (dynamic height and width, model spec inside)."""
    require_train_extra("export")
    from scratchdet.evaluation.verdict_threshold import resolve_threshold
    from scratchdet.inference.export import OPSET, export_onnx
    from scratchdet.inference.torch_runtime import load_torch_model

    try:
        if out.exists() and not force:
            raise FileExistsError(f"{out} exists; give --force to overwrite it")
        photos = _calibration_photos(int8, calibrate)
        model, spec = load_torch_model(checkpoint)
        if threshold is not None or threshold_from is not None:
            value, how = resolve_threshold(threshold, threshold_from, threshold_group)
            spec = spec.with_threshold(value, how or f"--threshold {value} at export")
        path = export_onnx(model, out, spec, (trace_size, trace_size),
                           extra={"exported_from": str(checkpoint)})
        how = _int8(path, photos) if int8 else "float32"
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path} ({spec.preset}, classes {list(spec.class_names)}, threshold "
               f"{spec.threshold:.4g} ({spec.threshold_source}), dynamic height/width, "
               f"opset {OPSET}, {how})")


def _calibration_photos(int8: bool, calibrate: list[str] | None) -> list[Path]:
    """The photos ``--calibrate`` names (checked before the export starts)."""
    from scratchdet.data.photos import collect_photos

    if int8 != bool(calibrate):
        raise ValueError("--int8 needs --calibrate PHOTOS (training photos), and "
                         "--calibrate needs --int8")
    return collect_photos(calibrate) if calibrate else []


def _int8(path: Path, photos: list[Path]) -> str:
    """Quantise the float export at ``path`` in place; what was done, in words."""
    from scratchdet.inference.onnx_runtime import cpu_has_vnni
    from scratchdet.inference.quantize import quantize_onnx

    try:
        facts = quantize_onnx(path, path, photos)
    except Exception:
        path.unlink(missing_ok=True)  # no float file left under the name asked for int8
        raise
    if cpu_has_vnni() is False:
        typer.echo("note: this CPU has no VNNI (avx512_vnni, avx_vnni): the int8 model runs "
                   "no faster than float here; it pays off on a station CPU with VNNI "
                   "(docs/speed.md)")
    return (f"int8: {facts['nodes']} nodes, calibrated on {facts['calibration']['crops']} "
            f"crops of {len(photos)} photos")


def _model_and_photos(model: str, images: str | None, checkpoint: Path | None,
                      preset: str | None) -> tuple[Path | None, str, str]:
    """``(model file or None, preset, photos)`` from ``MODEL IMAGES``, or from the deprecated
    ``IMAGES --checkpoint FILE`` / ``IMAGES --model PRESET`` (with a note). Exit 2 when they
    do not add up or MODEL is neither a file nor a preset."""
    from scratchdet.models.factory import PRESETS

    if checkpoint is not None or preset is not None:
        options.deprecated("--checkpoint FILE" if checkpoint is not None else "--model PRESET",
                           "scratchdet benchmark MODEL IMAGES")
        if images is not None:
            _usage("give the model once: as MODEL or (deprecated) --checkpoint/--model")
        model, images = str(checkpoint or preset), model
    if images is None:
        _usage("missing IMAGES: scratchdet benchmark MODEL IMAGES (MODEL: a model file, or a "
               "preset name for an untrained model, e.g. lite0_fpn_fast)")
    if model in PRESETS and not Path(model).is_file():
        return None, model, images
    if not Path(model).is_file():
        _usage(f"{model}: model file not found (nor a preset name: {', '.join(PRESETS)})")
    return Path(model), "lite0_fpn_fast", images


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def benchmark(
    model: str = options.model_argument(
        "A model file (model.onnx, model.pt, .ckpt), or a preset name to time untrained "
        "(e.g. lite0_fpn_fast)."),
    images: str | None = typer.Argument(
        None, metavar="IMAGES", show_default=False,
        help="A photo, a folder of photos or a glob."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", hidden=True, help="Deprecated: give the model file as MODEL."),
    preset: str | None = typer.Option(
        None, "--model", hidden=True, help="Deprecated: give the preset name as MODEL."),
    runtime: str = typer.Option(
        "auto", "--runtime", help="auto (onnx: the CPU), onnx, torch or openvino; timed "
        "against torch, onnx, onnx with --compare-runtimes."),
    scale: float = typer.Option(1.0, "--scale", help="Decode scale (0.5: JPEG draft decode)."),
    max_single: int = typer.Option(
        DEFAULT_MAX_SINGLE, "--max-single",
        help="Region up to this side runs as one input; 0: always tiles."),
    tile_size: int = typer.Option(
        DEFAULT_TILE_SIZE, "--tile-size",
        help="Tile side for an untrained preset (a model file's own tiling wins)."),
    min_overlap: int = typer.Option(
        DEFAULT_TILE_OVERLAP, "--min-overlap", help="Least tile overlap for an untrained preset."),
    tta: str = typer.Option("", "--tta", help="Test-time flips (h, v, hv; comma-separated)."),
    threads: int = options.THREADS,
    repeat: int = typer.Option(1, "--repeat", help="Timed passes over the photos."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed predictions before timing."),
    seed_baseline: bool = typer.Option(
        True, "--seed-baseline/--no-seed-baseline", help="Also time the seed Cascade X101."),
    seed_photos: int = typer.Option(0, "--seed-photos",
                                    help="Time the seed on the first N photos only (0: all)."),
    seed_size: str = typer.Option("1333x800", "--seed-size",
                                  help="Seed input size, longer x shorter side (its resize)."),
    compare_runtimes: bool = typer.Option(
        True, "--compare-runtimes/--no-compare-runtimes", help="Also time the other runtime."),
    out: Path | None = options.out_option(None, "Folder for benchmark.json/.md (default: none)."),
    device: str = typer.Option(
        "cpu", "--device", help="cpu, or cuda / cuda:N: photos/s of batched prediction on the "
        "GPU beside the single-photo path and the seed model (needs a model.pt)."),
    batch: int = typer.Option(8, "--batch", help="With a GPU: photos per batch."),
    amp: str = typer.Option(
        "none,tf32,bf16", "--amp", help="With a GPU: precisions to time (none: float32, tf32, "
        "bf16, fp16; comma-separated)."),
    autotune: bool = typer.Option(
        False, "--autotune", help="With a GPU: let cuDNN time its algorithms per input shape "
        "(pays off when shapes repeat: one part type)."),
) -> None:
    """End-to-end latency per photo (decode, localise, model, merge) vs the seed model."""
    require_train_extra("benchmark")
    if device != "cpu":
        _gpu_benchmark(model, images, device, (batch, amp, autotune), repeat, seed_baseline, out)
        return
    from scratchdet.inference import benchmark as bench
    from scratchdet.inference.tta import parse_tta

    path, name, photos_spec = _model_and_photos(model, images, checkpoint, preset)
    runtime = "onnx" if runtime == "auto" else runtime
    try:
        flips = parse_tta(tta)
        photos = bench.find_photos(photos_spec)
        seed_max, seed_min = _size(seed_size)
        settings = bench.BenchmarkSettings(
            model=name, checkpoint=path, runtime=runtime, scale=scale,
            max_single=max_single or None, tile_size=tile_size, min_overlap=min_overlap,
            tta=flips, threads=threads, repeat=repeat, warmup=warmup, seed_baseline=seed_baseline,
            seed_photos=seed_photos or None, seed_min_size=seed_min, seed_max_size=seed_max,
            compare_runtimes=compare_runtimes and not (
                str(path or "").endswith(".onnx") and runtime != "openvino"),
        )
        result = bench.run_benchmark(photos, settings)
    except (FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for line in bench.summary_lines(result):
        typer.echo(line)
    if out is not None:
        js, md = bench.write_outputs(result, out)
        typer.echo(f"wrote {js} and {md}")


def _gpu_benchmark(model: str, images: str | None, device: str, how: tuple[int, str, bool],
                   repeat: int, seed_baseline: bool, out: Path | None) -> None:
    """``benchmark MODEL IMAGES --device cuda``: inference.gpu_benchmark; ``how``: batch size,
    precisions and autotuning."""
    import json

    import torch

    from scratchdet.inference import gpu_benchmark
    from scratchdet.inference.benchmark import find_photos
    from scratchdet.io import write_text_atomic

    if images is None or not Path(model).is_file() or Path(model).suffix == ".onnx":
        _usage("with --device cuda: scratchdet benchmark MODEL.pt IMAGES (a torch model file)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        _usage(f"--device {device}: no CUDA GPU is visible here")
    batch, amp, autotune = how
    amps = [None if a.strip() in ("", "none") else a.strip() for a in amp.split(",")]
    try:
        photos = find_photos(images)
        runs = gpu_benchmark.run_gpu_benchmark(Path(model), photos, device, batch,
                                               amps, max(repeat, 2), seed_baseline,
                                               autotune=autotune)
    except (FileNotFoundError, ValueError) as err:
        _usage(str(err))
    for line in gpu_benchmark.summary_lines(runs, device):
        typer.echo(line)
    if out is not None:
        data = gpu_benchmark.to_dict(runs, device, photos)
        Path(out).mkdir(parents=True, exist_ok=True)
        path = write_text_atomic(Path(out) / "benchmark.json", json.dumps(data, indent=2) + "\n",
                                 force=True)
        typer.echo(f"wrote {path}")


def _size(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--seed-size: expected LONGxSHORT like 1333x800, got {text!r}") from None
    return max(a, b), min(a, b)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("benchmark")(benchmark)
