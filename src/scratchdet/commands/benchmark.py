"""``scratchdet export MODEL`` (ONNX) and ``scratchdet benchmark IMAGES`` (CPU latency)."""

from __future__ import annotations

from pathlib import Path

import typer

from scratchdet.commands import options
from scratchdet.commands.extras import require_train_extra
from scratchdet.structures import DEFAULT_MAX_SINGLE, DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE


def export(
    checkpoint: Path = typer.Argument(..., help="A scratchdet model.pt or training .ckpt."),
    out: Path = typer.Option(Path("model.onnx"), "-o", "--out", help="ONNX file to write."),
    trace_size: int = typer.Option(512, help="Side of the square image the graph is traced on."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
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
        model, spec = load_torch_model(checkpoint)
        if threshold is not None or threshold_from is not None:
            value, how = resolve_threshold(threshold, threshold_from, threshold_group)
            spec = spec.with_threshold(value, how or f"--threshold {value} at export")
        path = export_onnx(model, out, spec, (trace_size, trace_size),
                           extra={"exported_from": str(checkpoint)})
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path} ({spec.preset}, classes {list(spec.class_names)}, threshold "
               f"{spec.threshold:.4g} ({spec.threshold_source}), dynamic height/width, "
               f"opset {OPSET})")


def benchmark(
    images: str = typer.Argument(..., help="A photo, a folder of photos or a glob."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Trained .ckpt/model.pt, or an exported .onnx."),
    model: str = typer.Option("lite0_fpn_fast", "--model",
                              help="Preset to time when no checkpoint is given (untrained)."),
    runtime: str = typer.Option(
        "onnx", "--runtime", help="onnx, torch or openvino (compared with: torch, onnx, onnx)."),
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
    threads: int = typer.Option(2, "--threads", help="Intra-op threads (torch and ORT)."),
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
    out: Path | None = typer.Option(None, "--out", help="Folder for benchmark.json/.md."),
) -> None:
    """End-to-end latency per photo (decode, localise, model, merge) vs the seed model."""
    require_train_extra("benchmark")
    from scratchdet.inference import benchmark as bench
    from scratchdet.inference.tta import parse_tta

    try:
        flips = parse_tta(tta)
        photos = bench.find_photos(images)
        if checkpoint is not None and not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: checkpoint not found")
        seed_max, seed_min = _size(seed_size)
        settings = bench.BenchmarkSettings(
            model=model, checkpoint=checkpoint, runtime=runtime, scale=scale,
            max_single=max_single or None, tile_size=tile_size, min_overlap=min_overlap,
            tta=flips, threads=threads, repeat=repeat, warmup=warmup, seed_baseline=seed_baseline,
            seed_photos=seed_photos or None, seed_min_size=seed_min, seed_max_size=seed_max,
            compare_runtimes=compare_runtimes and not (
                str(checkpoint or "").endswith(".onnx") and runtime != "openvino"),
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


def _size(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--seed-size: expected LONGxSHORT like 1333x800, got {text!r}") from None
    return max(a, b), min(a, b)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("benchmark")(benchmark)
