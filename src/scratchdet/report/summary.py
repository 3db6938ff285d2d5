"""The summary-first blocks of a validation report: what the line would catch and scrap.

Built from an evaluation folder's ``metrics.json`` (:class:`EvaluationResult` with its part
level) and an operating threshold; every count comes from the evaluator's part level
(:meth:`PartLevelResult.at`, the verdict rule of :func:`scratchdet.structures.verdict`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from scratchdet.evaluation.confidence import PRF1Point, best_f1
from scratchdet.evaluation.image_level import PartLevelResult, ThresholdPoint
from scratchdet.evaluation.plots import prf1_png
from scratchdet.evaluation.result import EvaluationResult
from scratchdet.report.assemble import EMPTY_CELL, cell
from scratchdet.report.html import Block, Html, Image, Table, Text

VERDICT_HEADER = ("group", "scratched parts", "caught (rejected)", "missed (passed)",
                  "clean parts", "passed", "rejected (scrapped)")


def _share(n: int, d: int) -> str:
    return f"{n} ({n / d:.0%})" if d else str(n)


def verdict_rows(part: PartLevelResult, threshold: float) -> list[list[str]]:
    """One row per part-level group: scratched parts caught/missed, clean passed/rejected."""
    rows = []
    for name in part.groups:
        p = part.at(threshold, name)
        rows.append([name, str(p.scratched), _share(p.caught, p.scratched),
                     _share(p.scratched - p.caught, p.scratched), str(p.clean),
                     _share(p.clean - p.rejected, p.clean), _share(p.rejected, p.clean)])
    return rows


def confusion_table(point: ThresholdPoint) -> Table:
    """The 2x2 confusion matrix of the parts: truth in rows, verdict in columns."""
    return Table(
        ["truth \\ verdict", "fail (rejected)", "pass"],
        [["scratched part", str(point.caught), str(point.scratched - point.caught)],
         ["clean part", str(point.rejected), str(point.clean - point.rejected)]],
        caption=f"Confusion matrix ({point.scratched + point.clean} parts, threshold "
                f"{point.threshold:.4g})")


def elsewhere_words(elsewhere: int) -> str:
    """`` (N only by boxes on no labelled scratch)``, or nothing for 0."""
    return f" ({elsewhere} only by boxes on no labelled scratch)" if elsewhere else ""


def verdict_sentence(point: ThresholdPoint, how: str, elsewhere: int = 0) -> str:
    """``caught X/Y scratched parts, rejected Z/W clean parts at threshold T (how)``;
    ``elsewhere``: how many of the caught parts no box on a labelled scratch failed
    (:attr:`scratchdet.evaluation.box_stats.BoxStats.caught_elsewhere`)."""
    return (f"caught {point.caught}/{point.scratched} scratched parts"
            f"{elsewhere_words(elsewhere)}, rejected {point.rejected}/{point.clean} clean parts "
            f"at threshold {point.threshold:.4g} ({how})")


def ap_sentence(result: EvaluationResult) -> str:
    """``AP50 0.694 (white 0.750, red 0.149), AP 0.314`` (undefined values as n/a)."""
    def fmt(v: float) -> str:
        return "n/a" if v < 0 else f"{v:.3f}"

    per = ", ".join(f"{g} {fmt(result.value('AP', '0.50', group=g))}"
                    for g in result.groups[1:])
    ap50 = fmt(result.value("AP", "0.50"))
    return (f"AP50 {ap50}" + (f" ({per})" if per else "")
            + f", AP {fmt(result.value('AP'))}")


def summary_blocks(metrics: Mapping[str, Any], threshold: float, how: str,
                   elsewhere: int = 0) -> list[Block]:
    """The first screen: the verdict in words, the verdict table, the confusion matrix, AP.
    ``elsewhere``: caught parts failed only by boxes on no labelled scratch."""
    result = EvaluationResult.from_dict(metrics)
    part = result.part_level
    if part is None:
        raise ValueError(f"{metrics.get('source', 'metrics')}: no part-level view to summarise "
                         "(evaluate with part_level=True)")
    p = part.at(threshold)
    lead = (f"<p style='font-size:1.15em'>At threshold <b>{threshold:.4g}</b> "
            f"({html.escape(how)}): of <b>{p.scratched}</b> scratched parts, "
            f"<b>{p.caught}</b> caught{html.escape(elsewhere_words(elsewhere))} and "
            f"<b>{p.scratched - p.caught}</b> missed; of "
            f"<b>{p.clean}</b> clean parts, <b>{p.clean - p.rejected}</b> passed and "
            f"<b>{p.rejected}</b> rejected (good parts scrapped).</p>")
    blocks: list[Block] = [
        Html(lead),
        Table(list(VERDICT_HEADER), verdict_rows(part, threshold),
              caption=f"Verdicts at threshold {threshold:.4g} (a part fails when its best box "
                      "scores >= the threshold)"),
        confusion_table(p),
        Text(f"Boxes (COCO, IoU 0.50): {ap_sentence(result)}."),
    ]
    pick = part.groups["all"].target
    if pick is not None:
        blocks.append(Text(f"On these photos: {pick.message}."))
    return blocks


def _at(curve: Sequence[PRF1Point], threshold: float) -> PRF1Point | None:
    """The curve's point at the highest grid threshold not above ``threshold``."""
    below = [q for q in curve if q.threshold <= threshold + 1e-12]
    return max(below, key=lambda q: q.threshold) if below else None


def _describe(label: str, curve: Sequence[PRF1Point], threshold: float) -> str:
    best, here = best_f1(curve), _at(curve, threshold)
    parts = [label + ":"]
    if best is not None:
        parts.append(f"best F1 {cell(best.f1)} at {best.threshold:.2f} (precision "
                     f"{cell(best.precision)}, recall {cell(best.recall)});")
    if here is not None:
        parts.append(f"at {here.threshold:.2f}: precision {cell(here.precision)}, recall "
                     f"{cell(here.recall)}, F1 {cell(here.f1)}")
    return " ".join(parts)


def prf1_blocks(box_curve: Sequence[PRF1Point], part_curve: Sequence[PRF1Point],
                threshold: float) -> list[Block]:
    """Box-level and part-level precision/recall/F1 against the confidence threshold."""
    blocks: list[Block] = [Text(
        "Box level: a kept box is right when COCOeval matches it to a scratch at IoU 0.50; "
        "recall counts every scratch. Part level: a part is rejected when its best box "
        f"scores >= the threshold; recall = scratched parts caught. {EMPTY_CELL}: undefined "
        "(nothing kept).")]
    for label, curve in (("boxes", box_curve), ("parts", part_curve)):
        if not curve:
            continue
        blocks.append(Text(_describe(label, curve, threshold)))
        rows = [q.to_dict() for q in curve]
        blocks.append(Image(prf1_png(rows, f"{label}: precision, recall, F1 by confidence",
                                     threshold), width=560))
    return blocks


def group_rows(result: EvaluationResult, threshold: float) -> list[list[str]]:
    """Per subgroup: photos, boxes, AP50, AP, AR50, part AUROC and the verdict counts."""
    part = result.part_level
    rows = []
    for g in result.groups:
        s = result.summaries[g]
        pg = part.groups.get(g) if part is not None else None
        p = part.at(threshold, g) if pg is not None and part is not None else None
        rows.append([
            g, str(s.images), str(s.scratched), str(s.images - s.scratched),
            str(s.boxes.get(result.bands[0].name, 0)),
            cell(result.value("AP", "0.50", group=g)), cell(result.value("AP", group=g)),
            cell(result.value("AR", "0.50", group=g)),
            cell(pg.auroc if pg is not None else None),
            f"{p.caught}/{p.scratched}" if p else EMPTY_CELL,
            f"{p.rejected}/{p.clean}" if p else EMPTY_CELL,
        ])
    return rows


def group_blocks(metrics: Mapping[str, Any], threshold: float) -> list[Block]:
    """The per-subgroup (colour) table."""
    result = EvaluationResult.from_dict(metrics)
    header = [metrics.get("group_by") or "group", "photos", "scratched", "clean", "GT boxes",
              "AP50", "AP", "AR50", "part AUROC", f"caught at {threshold:.3g}",
              f"clean rejected at {threshold:.3g}"]
    return [Table(header, group_rows(result, threshold),
                  caption=f"By {metrics.get('group_by') or 'group'}")]


def band_blocks(metrics: Mapping[str, Any]) -> list[Block]:
    """Per size band: GT boxes, AP50 and AR50 per subgroup (IoU 0.50)."""
    result = EvaluationResult.from_dict(metrics)
    header = ["band", "GT boxes"]
    header += [f"AP50 {g}" for g in result.groups] + [f"AR50 {g}" for g in result.groups]
    rows = []
    for band in result.bands:
        boxes = result.summaries[result.groups[0]].boxes.get(band.name, 0)
        rows.append([band.name, str(boxes),
                     *(cell(result.value("AP", "0.50", band.name, g)) for g in result.groups),
                     *(cell(result.value("AR", "0.50", band.name, g)) for g in result.groups)])
    return [Text(f"Bands by the square root of the box area, in px of the photo; "
                 f"{EMPTY_CELL}: no GT box there."),
            Table(header, rows, caption="By size band")]
