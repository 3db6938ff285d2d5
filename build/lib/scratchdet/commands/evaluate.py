"""``scratchdet evaluate``, ``scratchdet analyze`` and ``scratchdet report``.

Settings come from an optional YAML (``--config``, validated by ``EvaluationConfig``), then
``--set key=value``, then the explicit options below (highest priority).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from scratchdet.commands import options

if TYPE_CHECKING:
    from scratchdet.evaluation.config import EvaluationConfig
    from scratchdet.evaluation.inputs import Scope

_CONFIG = typer.Option(None, "--config", help="YAML of EvaluationConfig keys.")
_SET = typer.Option([], "--set", help="Override a config key, e.g. --set max_dets=50.")
_BANDS = typer.Option(
    None, "--bands", help="Size bands as LO:HI sqrt-area px, e.g. 0:40,40:70,70:96,96:1e5 "
    "(optionally named: small=0:40). Default: the seed's."
)
_GROUP_BY = typer.Option(
    None, "--group-by", help="Image attribute for the subgroup columns (colour, state, ...); "
    "'none' for only 'all'. Default: colour."
)
_FORCE = typer.Option(False, "--force", help="Overwrite existing output files.")


def _settings(config: Path | None, set_: list[str], **explicit: Any) -> EvaluationConfig:
    """Config file + --set + explicit options into an EvaluationConfig (exit 2 on error)."""
    from scratchdet.config import ConfigError, load_config
    from scratchdet.evaluation.config import EvaluationConfig

    try:
        cfg = load_config(EvaluationConfig, config, set_)
        for key, value in explicit.items():
            if value is not None:
                none = key == "group_by" and str(value).lower() == "none"
                setattr(cfg, key, None if none else value)  # validated on assignment
        cfg.size_bands()  # validate band text now
    except (ConfigError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    return cfg


def _fail(err: Exception) -> NoReturn:
    """Bad input (a missing or malformed file, an existing output without --force): exit 2."""
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2) from None


_SCOPE_HINT = ("name the predicted photos with --images-dir or --images-list, or score every "
               "ground-truth photo with --all-gt")


def _scope_lines(scope: Scope, all_gt: bool) -> list[str]:
    """What was scored, for stderr: photos left out, or photos scored without a detection."""
    n, k = scope.total, scope.scored
    lines = [f"scored {k} of {n} ground-truth photos"]
    if scope.chosen_by is not None:
        lines[0] += f", those {scope.chosen_by}"
    if k < n:
        lines[0] += f" ({n - k} without predictions left out; --all-gt to score them as misses)"
    empty, boxes = scope.without_detection
    if empty and all_gt:
        lines[0] += f" ({empty} without any detection, scored as predicted empty)"
    elif empty:
        lines.append(f"warning: {empty} of {n} ground-truth photos have no detection and are "
                     f"scored as predicted empty ({boxes} box(es) on them count as misses); if "
                     f"they were not predicted, name the photos that were with --images-dir or "
                     f"--images-list (predict's image_ids.json beside DETS is read when "
                     f"present); --all-gt to score them all without this warning")
    if scope.unread:
        lines.append(f"warning: {scope.unread} photo(s) listed were not predicted (no row in "
                     f"verdicts.csv: predict could not read them): left out")
    if scope.ignored:
        lines.append(f"note: {scope.ignored} detection(s) on photos outside those scored "
                     f"were ignored")
    return lines


def evaluate_cmd(
    gt: Path = typer.Argument(..., help="Ground-truth COCO json."),
    dets: Path = typer.Argument(..., help="Detections: COCO results json."),
    bands: str | None = _BANDS,
    group_by: str | None = _GROUP_BY,
    part_level: bool | None = typer.Option(
        None, "--part-level/--no-part-level", help="Add the part-level view (AUROC, thresholds)."
    ),
    target_recall: float | None = typer.Option(
        None, "--target-recall", help="With --part-level: highest threshold reaching this recall."
    ),
    bootstrap: int | None = typer.Option(
        None, "--bootstrap", min=0, help="Also print 95% intervals of AP50 from this many "
        "photo resamples per subgroup (e.g. 500; 0: off)."),
    out: Path | None = options.out_option(
        None, "Folder for metrics.md/json/csv + plots (default: print only)."),
    all_gt: bool = typer.Option(
        False, "--all-gt", help="Score every ground-truth photo; one without a detection counts "
        "as predicted empty (its boxes are misses)."),
    images_list: Path | None = typer.Option(
        None, "--images-list", help="Score the photos this file names: predict's "
        "image_ids.json, a json list of image ids or file names, or one a line."),
    images_dir: Path | None = typer.Option(
        None, "--images-dir", help="Score the ground-truth photos whose file is in this folder "
        "(the photos given to predict)."),
    config: Path | None = _CONFIG,
    set_: list[str] = _SET,
    force: bool = _FORCE,
) -> None:
    """COCO AP/AR per size band and subgroup (pycocotools COCOeval, maxDets 100).

    Scores only the ground-truth photos that were predicted: those of --images-list or
    --images-dir when given; else those listed in image_ids.json beside DETS (written by
    scratchdet predict, with or without boxes; a photo predict could not read is left out);
    else every photo, with a warning naming how many have no detection. --all-gt scores every
    photo. Stderr says how many were scored and left out. Both inputs are checked first (the
    checks of scratchdet data validate): any bad record is listed and nothing is scored.
    Exit 2 on bad input.
    """
    cfg = _settings(config, set_, bands=bands, group_by=group_by, part_level=part_level,
                    target_recall=target_recall, bootstrap=bootstrap)
    if sum([all_gt, images_list is not None, images_dir is not None]) > 1:
        _fail(ValueError("--all-gt, --images-list and --images-dir: give one at most"))
    from scratchdet.evaluation.inputs import ScopeError, scope_inputs
    from scratchdet.evaluation.workflow import evaluate_and_write

    try:
        scope = scope_inputs(gt, dets, all_gt=all_gt, images_list=images_list,
                             images_dir=images_dir)
    except ScopeError as err:
        _fail(ValueError(f"{err}\n({_SCOPE_HINT})"))
    except (ValueError, FileNotFoundError) as err:
        _fail(ValueError(f"{err}\nnothing was scored"))
    for line in _scope_lines(scope, all_gt):
        typer.echo(line, err=True)
    try:
        run = evaluate_and_write(scope.gt, scope.detections, out, bands=cfg.size_bands(),
                                 group_by=cfg.group_by, groups=cfg.groups,
                                 max_dets=cfg.max_dets, part_level=cfg.part_level,
                                 target_recall=cfg.target_recall, thresholds=cfg.thresholds,
                                 bootstrap=cfg.bootstrap, force=force)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        _fail(err)
    typer.echo(run.full_text, nl=bool(run.bootstrap_text))
    if out is not None:
        typer.echo(f"\nwrote {len(run.files)} files to {out}")


def analyze_cmd(
    gt: Path = typer.Argument(..., help="Ground-truth COCO json."),
    dets: Path = typer.Argument(..., help="Detections: COCO results json."),
    images: Path = typer.Argument(..., help="Folder with the photos (only these are drawn)."),
    out: Path = options.out_option(Path("outputs/analysis"), "Output folder."),
    top_k: int | None = typer.Option(
        None, "--top-k", help="Best and worst photos drawn (default: 5)."),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, max=1.0, help="Verdict threshold: detections at or "
        "above it are drawn solid and counted (a false box when they match no ground truth); "
        "those down to half of it are drawn dashed as near-misses (default: 0.3)."),
    score_thr: float | None = options.SCORE_THR_ALIAS_THRESHOLD,
    bands: str | None = _BANDS,
    group_by: str | None = _GROUP_BY,
    config: Path | None = _CONFIG,
    set_: list[str] = _SET,
    force: bool = _FORCE,
) -> None:
    """Rank photos by per-photo AP50; overlays and full-resolution crops of best and worst."""
    score_thr = options.alias(threshold, score_thr, "--score-thr", "--threshold")
    cfg = _settings(config, set_, bands=bands, group_by=group_by, top_k=top_k,
                    score_thr=score_thr)
    from scratchdet.evaluation.analyze import write_analysis

    try:
        res = write_analysis(gt, dets, images, out, top_k=cfg.top_k, score_thr=cfg.score_thr,
                             bands=cfg.size_bands(), group_by=cfg.group_by,
                             max_dets=cfg.max_dets, force=force)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        _fail(err)
    typer.echo(f"{len(res.photos)} photos ranked, {res.present} found in {images}")
    for p in [p for p in res.photos if (images / p.file_name).is_file()][: cfg.top_k]:
        ap = "n/a" if p.ap50 is None else f"{p.ap50:.3f}"
        typer.echo(f"  worst: {p.file_name}  AP50 {ap}  misses {p.misses}/{p.gt_boxes}  "
                   f"false boxes {p.false_boxes}")
    typer.echo(f"wrote {len(res.files)} files to {out}")


def report_cmd(
    eval_dir: Path | None = typer.Option(None, "--eval", help="A `evaluate --out` folder."),
    analysis_dir: Path | None = typer.Option(None, "--analysis", help="An `analyze` folder."),
    stats_dir: Path | None = typer.Option(None, "--stats", help="A stats folder (stats.md)."),
    out: Path = options.out_option(Path("outputs/report.html"), "The HTML file."),
    title: str = typer.Option("scratchdet report", "--title", help="The report's title."),
    force: bool = _FORCE,
) -> None:
    """One self-contained HTML report from evaluation, analysis and stats folders."""
    from scratchdet.report import build_report

    try:
        path = build_report(eval_dir, analysis_dir, stats_dir, title).write(out, force)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        _fail(err)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
    app.command("analyze")(analyze_cmd)
    app.command("report")(report_cmd)
