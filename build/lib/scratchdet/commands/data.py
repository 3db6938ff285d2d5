"""``scratchdet data ...`` commands: fetch-sample, validate, convert, stats, split,
from-history.

Thin wrappers: the logic lives in ``scratchdet.data.*``; heavy imports stay inside functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from scratchdet.data.records import Dataset

data_app = typer.Typer(
    help="Dataset tools: fetch, validate, convert, stats, split, from-history.",
    no_args_is_help=True,
)

COLOURS_HELP = "Colour file-name prefixes, comma-separated (a photo 'red_x.JPG' is 'red')."
QUIET_HELP = "No progress bar and no summary: only problems and errors (for scripts)."


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _fail(message: str, code: int = 2) -> NoReturn:
    """Exit 2 for a usage error or bad input (the default), 1 for a run that failed."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _colours(text: str) -> tuple[str, ...]:
    colours = tuple(c.strip() for c in text.split(",") if c.strip())
    if not colours:
        _fail(f"--colours '{text}': expected names like 'white,red'")
    return colours


@data_app.command("fetch-sample")
def fetch_sample_cmd(
    dest: Path | None = typer.Argument(
        None, help="Folder to fill; default: $SCRATCHDET_SAMPLE, else data/scratch-sample."
    ),
    ref: str = typer.Option("HEAD", help="Branch, tag or commit of the source repository."),
    force: bool = typer.Option(False, "--force", help="Download again files already valid."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Download the public scratch sample into DEST.

    Source: github.com/karpovaknn/defect_detection, folder dataset/.
    Every photo is checked against SHA256SUMS.
    Each file goes to a '.part' file and is renamed only when complete.
    Re-running resumes: files already present and valid are kept.
    """
    from scratchdet.data.fetch import FetchError, describe, fetch_sample
    from scratchdet.settings import sample_dir

    folder = sample_dir(dest)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a DEST that cannot be a folder: a usage error
        _fail(f"{folder}: cannot create the folder ({err.strerror or err})")
    try:
        result = fetch_sample(folder, ref=ref, force=force, progress=not quiet)
    except FetchError as err:
        _fail(str(err), code=1)
    except OSError as err:  # the download could not be written: the work failed
        _fail(f"{folder}: {err}", code=1)
    if not quiet:
        typer.echo(describe(result))


@data_app.command("validate")
def validate_cmd(
    annotations: Path = typer.Argument(..., help="COCO json to check."),
    images: Path = typer.Argument(..., help="Folder holding the photos it lists."),
    only_present: bool = typer.Option(
        False,
        "--only-present",
        help="Check only the photos found on disk; missing photos become one warning with a "
        "count instead of one error each (for partial copies such as the sample).",
    ),
    decode: bool = typer.Option(
        True, "--decode/--no-decode", help="Decode every photo to catch truncated files."
    ),
    colours: str = typer.Option("white,red", help=COLOURS_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Check a COCO json and its photos; report every problem; exit 1 on any error (exit 2
    when the json or the folder does not exist; the json is still checked without the folder).

    Errors: missing photo; unreadable or truncated image; decompression bomb (more pixels
    than PIL's limit); decoded size differing from the json; EXIF orientation other than 1;
    box not 4 finite numbers (NaN, infinity, a string), outside the photo or of zero or
    negative size; area not a finite number >= 0; duplicate ids;
    annotation of an unknown image or category; malformed json.
    Warnings: photos on disk not in the json, stored area != w*h, crowd boxes,
    file names without a colour prefix. Nothing is ever modified.
    """
    from scratchdet.data.validate import validate_coco

    if not annotations.is_file():
        _fail(f"{annotations}: COCO json not found")
    report = validate_coco(
        annotations,
        images,
        only_present=only_present,
        decode=decode,
        colours=_colours(colours),
        progress=not quiet,
    )
    for title, problems in (("errors", report.errors), ("warnings", report.warnings)):
        if problems and not quiet:
            typer.echo(f"{title} ({len(problems)}):")
        for problem in problems:
            typer.echo(f"  {problem}" if not quiet else str(problem))
    if not quiet:
        typer.echo(report.summary())
    if not images.is_dir():  # the json was still checked; a missing folder is a usage error
        raise typer.Exit(2)
    if not report.ok:
        raise typer.Exit(1)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        _fail(f"--default-size '{text}': expected WIDTHxHEIGHT, e.g. 4608x3072")
    return int(w), int(h)


@data_app.command("convert")
def convert_cmd(
    exports: list[Path] = typer.Argument(
        ..., help="Export json files or folders (colour = the folder holding each json)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="COCO json to write."),
    images: list[Path] = typer.Option(
        [], "--images", "-i", help="Photo folder (repeatable): sizes, and clean photos."
    ),
    default_size: str | None = typer.Option(
        None, help="WIDTHxHEIGHT for labelled photos not found in --images (e.g. 4608x3072)."
    ),
    person: str | None = typer.Option(
        None, help="Labeller id to take when a task holds several people's results."
    ),
    category: str = typer.Option("scratch", help="Name of the single category."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Labelling-tool exports (+ photo folders) -> one COCO json, written atomically.

    File names gain the colour prefix: white/DSC_0428.JPG -> white_DSC_0428.JPG.
    Boxes are copied unchanged: position x, y, width, height -> bbox.
    Photos in --images that no export lists are added as clean (no box).
    Sizes come from the photo when present, else from --default-size.
    """
    from scratchdet.data.convert import ConvertError, convert_exports
    from scratchdet.io import OutputExistsError, check_writable, write_json_atomic

    try:
        check_writable(out, force)
        size = _parse_size(default_size)
        result = convert_exports(exports, images, size, category, person, progress=not quiet)
        write_json_atomic(out, result.coco, force=force)
    except (ConvertError, OutputExistsError) as err:
        _fail(str(err))
    if not quiet:
        for note in result.notes:
            typer.echo(note)
        typer.echo(f"wrote {out}")


def _split_datasets(
    annotations: list[Path], images_root: Path | None, colours: tuple[str, ...]
) -> dict[str, Dataset]:
    """Every json checked (as ``data validate`` checks it, bounds aside) before any is used."""
    from scratchdet.data.records import DatasetError, read_coco_json, records_from_coco
    from scratchdet.data.validate import InvalidInputError, coco_errors

    parsed, problems = {}, []
    try:
        for path in annotations:
            parsed[path] = read_coco_json(path)
            problems += coco_errors(parsed[path], path, bounds=False)
        if problems:
            raise InvalidInputError(problems, "refusing to compute stats (nothing written)")
        datasets: dict[str, Dataset] = {}
        for path, coco in parsed.items():
            folder = images_root / path.stem if images_root is not None else None
            datasets[path.stem] = records_from_coco(coco, folder, colours, source=path)
    except DatasetError as err:
        _fail(str(err))
    return datasets


@data_app.command("stats")
def stats_cmd(
    annotations: list[Path] = typer.Argument(
        None,
        help="COCO jsons, one per split (split = file stem). "
        "Default: annotations/{train,val,test}.json of $SCRATCHDET_SAMPLE.",
    ),
    images_root: Path | None = typer.Option(
        None,
        help="Folder with one photo folder per split (<root>/<split>/); default: the "
        "sample folder when the default annotations are used.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write stats.md, stats.json and PNG histograms here."
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG histograms."),
    colours: str = typer.Option("white,red", help=COLOURS_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing; only write --out."),
) -> None:
    """Photos per split and colour, scratched/clean, boxes and box sizes.

    Prints the table for all photos in the jsons and for those present on disk.
    Every json is checked first (the checks of data validate, boxes outside their photo
    aside): any error is listed, exit 2, and nothing is written.
    """
    from scratchdet.data.records import DatasetError
    from scratchdet.data.stats import compute_stats, format_summary, write_stats
    from scratchdet.settings import sample_dir

    if not annotations:
        root = sample_dir()
        annotations = [root / "annotations" / f"{s}.json" for s in ("train", "val", "test")]
        images_root = images_root or root
    cols = _colours(colours)
    try:
        stats = compute_stats(_split_datasets(annotations, images_root, cols), cols)
    except DatasetError as err:
        _fail(str(err))
    if not quiet:
        typer.echo(format_summary(stats))
    if out is not None:
        files = write_stats(stats, out, plots=plots)
        if not quiet:
            written = [files.markdown, files.json, *files.plots]
            typer.echo("wrote " + ", ".join(str(p) for p in written))


@data_app.command("split")
def split_cmd(
    annotations: list[Path] = typer.Argument(
        ..., help="COCO json(s) to split; several are merged first (ids renumbered)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <split>.json files."),
    ratios: str = typer.Option("train=0.8,val=0.1,test=0.1", help="name=ratio,... (normalised)."),
    seed: int = typer.Option(0, help="Random seed: same seed and input, same split."),
    colours: str = typer.Option("white,red", help=COLOURS_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite existing split files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing."),
) -> None:
    """Seeded split stratified by colour x clean/scratched; one COCO json per split."""
    from scratchdet.data.records import DatasetError, read_coco_json, records_from_coco
    from scratchdet.data.split import SplitError, merge_coco, parse_ratios, split_coco, write_splits
    from scratchdet.data.stats import compute_stats, format_summary
    from scratchdet.io import OutputExistsError

    cols = _colours(colours)
    try:
        parsed = parse_ratios(ratios)
        inputs = [(str(p), read_coco_json(p)) for p in annotations]
        for source, data in inputs:  # structure check: errors name the file and record
            records_from_coco(data, source=Path(source))
        coco = inputs[0][1] if len(inputs) == 1 else merge_coco(inputs)
        splits = split_coco(coco, parsed, seed, cols)
        paths = write_splits(splits, out, force)
    except (DatasetError, SplitError, OutputExistsError) as err:
        _fail(str(err))
    if not quiet:
        datasets = {name: records_from_coco(c, colours=cols) for name, c in splits.items()}
        typer.echo(format_summary(compute_stats(datasets, cols)))
        typer.echo("wrote " + ", ".join(str(p) for p in paths))


@data_app.command("from-history")
def from_history_cmd(
    db: str = typer.Option(..., "--db", help="SQLAlchemy URL of the service's history."),
    storage: Path = typer.Option(..., "--storage", help="The service's photo folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for images/ and annotations.json."),
    link: bool = typer.Option(False, "--link", help="Symlink the photos instead of copying."),
    colour: str | None = typer.Option(
        None, "--colour", help="Colour prefix for photos whose uploaded name has none "
        "(e.g. white: a station that sees only white parts)."),
    colours: str = typer.Option("white,red", help=COLOURS_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT/annotations.json."),
) -> None:
    """Operator-reviewed inspections of the service -> a COCO training set in OUT.

    A false alarm becomes a clean photo; confirmed and drawn (missed) boxes become scratch
    boxes; unreviewed inspections are left out and counted. The result passes
    `data validate OUT/annotations.json OUT/images`; to train on it with the sample, merge
    the two (README, Service).
    """
    from scratchdet.commands.extras import open_database
    from scratchdet.io import OutputExistsError
    from scratchdet.service.db import open_history
    from scratchdet.service.training_set import export_training_set

    if not storage.is_dir():
        _fail(f"--storage {storage}: the photo folder does not exist")
    history = open_database(open_history, db)
    try:
        summary = export_training_set(history, storage, out, link=link, colour=colour,
                                      colours=_colours(colours), force=force)
    except OutputExistsError as err:
        _fail(str(err))
    finally:
        history.close()
    typer.echo(summary.describe())
