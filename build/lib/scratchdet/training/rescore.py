"""Rescoring detections with a second look, fitted and measured out of fold on a crossval run.

Two families of remedy for false alarms on clean parts, both reading frozen ImageNet Lite0
features of each detection's full-resolution crop (:mod:`scratchdet.models.verifier`):

- **verifier**: a logistic regression on the pooled crop features, scratch vs look-alike.
  Positives: ground-truth boxes (jittered) and detections matching one (IoU >= 0.5);
  negatives: detections overlapping no scratch (IoU < 0.1), mined **out of fold**: for fold
  ``k`` they are the out-of-fold detections of fold ``k``'s training photos (made by the other
  folds' models, which never saw those photos). New score ``sqrt(score * p)``.
- **prior** (PatchCore-style clean-surface memory): patch features of random windows on the
  training photos' part surfaces away from any scratch; a detection's distance to its nearest
  clean patch (largest over its crop's core) says whether its structure was also seen on clean
  surfaces. ``score`` and that distance are combined by a two-feature logistic regression
  fitted on the same mined detections, with each training photo's own patches left out of
  the memory when it is scored.

Nothing here looks at a held-out fold's labels: its detections are only rescored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scratchdet.geometry.crops import CropSpec, crop_windows
from scratchdet.geometry.localize import LocalizeConfig, locate_part
from scratchdet.geometry.tiling import box_iou
from scratchdet.imaging import cut_crops, decode_at_scale
from scratchdet.models.verifier import CropFeatures

Log = Callable[[str], None]
MIN_SCORE = 0.05


@dataclass
class PhotoCrops:
    """Features of one photo's crops: its detections, its jittered scratches, clean windows."""

    image_id: int
    fold: int
    det_boxes: np.ndarray  # [N, 4] xyxy
    det_scores: np.ndarray
    det_labels: np.ndarray
    det_iou: np.ndarray  # best IoU of each detection with a scratch of the photo (0 if none)
    det_pooled: np.ndarray  # [N, 944]
    det_core: np.ndarray  # [N, C, 152] central patches
    gt_pooled: np.ndarray  # [G, 944]
    clean_patches: np.ndarray  # [K, 152]
    extra: dict[str, object] = field(default_factory=dict)


def _xyxy(bbox: list[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def _jitter(boxes: np.ndarray, rng: np.random.Generator, copies: int) -> np.ndarray:
    """``copies`` random rescalings (0.8-1.25) and shifts (10% of the side) of each box."""
    out = [boxes]
    for _ in range(copies):
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.uniform(-0.1, 0.1, len(boxes)) * w
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.uniform(-0.1, 0.1, len(boxes)) * h
        s = np.exp(rng.uniform(np.log(0.8), np.log(1.25), (len(boxes), 2)))
        out.append(np.stack([cx - w * s[:, 0] / 2, cy - h * s[:, 1] / 2,
                             cx + w * s[:, 0] / 2, cy + h * s[:, 1] / 2], 1))
    return np.concatenate(out)


def _clean_windows(region: tuple[int, int, int, int], gt: np.ndarray, count: int,
                   rng: np.random.Generator, spec: CropSpec) -> np.ndarray:
    """Up to ``count`` square boxes in ``region`` overlapping no (padded) scratch box."""
    x0, y0, x1, y1 = region
    pad = np.array([-64, -64, 64, 64])
    boxes = []
    for _ in range(count * 10):
        side = float(np.exp(rng.uniform(np.log(spec.min_side), np.log(spec.max_side))))
        side = min(side, x1 - x0, y1 - y0)
        cx = rng.uniform(x0 + side / 2, x1 - side / 2)
        cy = rng.uniform(y0 + side / 2, y1 - side / 2)
        box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        if len(gt) and (box_iou(box[None], gt + pad) > 0).any():
            continue
        boxes.append(box)
        if len(boxes) == count:
            break
    return np.array(boxes).reshape(-1, 4)


def _features(model: CropFeatures, crops: np.ndarray, batch: int = 32) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    pooled, patches = [], []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            p, q = model(torch.from_numpy(crops[i : i + batch]))
            pooled.append(p.numpy())
            patches.append(q.numpy())
    if not pooled:
        return np.zeros((0, 944), np.float32), np.zeros((0, 100, 152), np.float32)
    return np.concatenate(pooled), np.concatenate(patches)


def core_patches(patches: np.ndarray, core: int = 4) -> np.ndarray:
    """The central ``core`` x ``core`` patches of ``[N, P, D]`` square patch grids."""
    n, p, d = patches.shape
    if n == 0:
        return np.zeros((0, core * core, d), dtype=patches.dtype)
    grid = round(p ** 0.5)
    lo = (grid - core) // 2
    return patches.reshape(n, grid, grid, d)[:, lo : lo + core, lo : lo + core].reshape(n, -1, d)


def photo_crops(run: Path, sample: Path, model: CropFeatures, spec: CropSpec = CropSpec(),
                clean_windows: int = 48, clean_keep: int = 1500, seed: int = 0,
                log: Log = print) -> list[PhotoCrops]:
    """Crop features of every photo of a crossval run (its ``oof.bbox.json``)."""
    coco = json.loads((run / "train_val.json").read_text())
    fold_of = json.loads((run / "folds.json").read_text())
    dets = [d for d in json.loads((run / "oof.bbox.json").read_text()) if d["score"] >= MIN_SCORE]
    rng = np.random.default_rng(seed)
    out = []
    for im in sorted(coco["images"], key=lambda m: m["id"]):
        gt = np.array([_xyxy(a["bbox"]) for a in coco["annotations"]
                       if a["image_id"] == im["id"]], dtype=np.float64).reshape(-1, 4)
        mine = [d for d in dets if d["image_id"] == im["id"]]
        boxes = np.array([_xyxy(d["bbox"]) for d in mine], dtype=np.float64).reshape(-1, 4)
        image, size = decode_at_scale(sample / im["file_name"])
        small = np.asarray(image.reduce(8))
        region = locate_part(small, size, LocalizeConfig()).box
        iou = box_iou(boxes, gt).max(1) if len(gt) and len(boxes) else np.zeros(len(boxes))
        det_pooled, det_patches = _features(model, cut_crops(
            image, crop_windows(boxes, *size, spec), spec.size))
        gt_boxes = _jitter(gt, rng, 4) if len(gt) else gt
        gt_crops = cut_crops(image, crop_windows(gt_boxes, *size, spec), spec.size)
        gt_pooled = _features(model, np.concatenate([gt_crops, gt_crops[:, :, ::-1]]))[0]
        windows = _clean_windows(region, gt, clean_windows, rng, spec)
        _, clean = _features(model, cut_crops(image, windows.astype(np.int64), spec.size))
        clean = clean.reshape(-1, clean.shape[-1])
        clean = clean[rng.choice(len(clean), min(clean_keep, len(clean)), replace=False)]
        out.append(PhotoCrops(
            im["id"], fold_of[im["file_name"]], boxes, np.array([d["score"] for d in mine]),
            np.array([d["category_id"] for d in mine], dtype=np.int64), iou, det_pooled,
            core_patches(det_patches), gt_pooled, clean, {"file_name": im["file_name"]}))
        log(f"{im['file_name']}: {len(boxes)} detections, {len(gt)} scratches, "
            f"{len(windows)} clean windows")
    return out


@dataclass(frozen=True)
class Logistic:
    """Logistic regression on standardised features: ``sigmoid(((x - mean) / std) @ w + b)``."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std) @ self.weight + self.bias

    def prob(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> Logistic:
    """Class-balanced logistic regression (L-BFGS), ``l2`` on the weights of the mean loss."""
    if len(set(y.tolist())) < 2:
        raise ValueError("fit_logistic needs both classes")
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy(((x - mean) / std).astype(np.float64))
    yt = torch.from_numpy(y.astype(np.float64))
    pos = yt.mean()
    weight = torch.where(yt > 0, 0.5 / pos, 0.5 / (1 - pos))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            xt @ w + b, yt, weight=weight) + l2 * (w ** 2).sum() / len(yt)
        loss.backward()
        return loss

    opt.step(closure)
    return Logistic(mean, std, w.detach().numpy(), float(b.detach()))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def bank_distances(photos: list[PhotoCrops]) -> list[np.ndarray]:
    """Per photo ``[N, C, P]``: each detection core patch's distance to photo j's clean patches."""
    banks = [torch.from_numpy(p.clean_patches) for p in photos]
    out = []
    for p in photos:
        n, c, d = p.det_core.shape
        q = torch.from_numpy(p.det_core.reshape(-1, d))
        cols = [torch.cdist(q, b).amin(1) if len(b) else torch.full((len(q),), np.inf)
                for b in banks]
        out.append(torch.stack(cols, 1).reshape(n, c, len(photos)).numpy()
                   if len(q) else np.zeros((0, c, len(photos))))
    return out


def _labels(p: PhotoCrops, fragments: bool = False) -> np.ndarray:
    """1: matches a scratch (IoU >= 0.5), 0: overlaps none (IoU < 0.1), -1: a fragment
    (0.1 <= IoU < 0.5; 0 with ``fragments``: a badly placed box is a negative too)."""
    low = 0.5 if fragments else 0.1
    return np.where(p.det_iou >= 0.5, 1, np.where(p.det_iou < low, 0, -1))


def _fit_verifier(photos: list[PhotoCrops], idx: list[int], l2: float,
                  fragments: bool = False) -> Logistic:
    """The crop verifier fitted on the photos ``idx``: their scratches and mined detections."""
    xs, ys = [], []
    for i in idx:
        lab = _labels(photos[i], fragments)
        keep = lab >= 0
        xs += [photos[i].det_pooled[keep], photos[i].gt_pooled]
        ys += [lab[keep], np.ones(len(photos[i].gt_pooled))]
    return fit_logistic(np.concatenate(xs), np.concatenate(ys), l2)


def _prior(distances: list[np.ndarray], i: int, bank: list[int]) -> np.ndarray:
    """log distance of photo ``i``'s detections to the clean patches of ``bank`` (minus ``i``)."""
    cols = np.array([j for j in bank if j != i])
    return np.log(distances[i][:, :, cols].min(2).max(1) + 1e-6)


def _stack_features(photos: list[PhotoCrops], train: list[int], targets: list[int],
                    distances: list[np.ndarray] | None, l2: float,
                    inner: bool) -> list[np.ndarray]:
    """[logit score, verifier logit(, prior)] of the detections of ``targets``; with ``inner``
    each training photo's verifier logit comes from a verifier fitted without its fold."""
    if inner:
        logits: dict[int, np.ndarray] = {}
        for f in sorted({photos[i].fold for i in train}):
            model = _fit_verifier(photos, [i for i in train if photos[i].fold != f], l2)
            logits |= {i: model.logit(photos[i].det_pooled) for i in targets
                       if photos[i].fold == f}
    else:
        model = _fit_verifier(photos, train, l2)
        logits = {i: model.logit(photos[i].det_pooled) for i in targets}
    out = []
    for i in targets:
        cols = [_logit(photos[i].det_scores), logits[i]]
        if distances is not None:
            cols.append(_prior(distances, i, train))
        out.append(np.stack(cols, 1))
    return out


def rescore_fold(photos: list[PhotoCrops], fold: int, method: str,
                 distances: list[np.ndarray] | None = None, l2: float = 1.0) -> list[np.ndarray]:
    """New scores of the detections of ``fold``'s photos (one array per photo of the fold).

    Methods: ``verifier``/``verifier_q`` (``sqrt(score * p)``), ``prior`` (logistic on score and
    clean-bank distance), ``stack_v``/``stack_vp`` (logistic on score, the verifier's logit
    out of fold within the training photos, and for ``stack_vp`` the clean-bank distance).
    """
    train = [i for i, p in enumerate(photos) if p.fold != fold]
    held = [i for i, p in enumerate(photos) if p.fold == fold]
    if method in ("verifier", "verifier_q"):
        model = _fit_verifier(photos, train, l2, fragments=method == "verifier_q")
        return [np.sqrt(photos[i].det_scores * model.prob(photos[i].det_pooled)) for i in held]
    labs = [_labels(photos[i]) for i in train]
    y = np.concatenate([lab[lab >= 0] for lab in labs])
    if method == "prior":
        assert distances is not None
        feats = [np.stack([_logit(photos[i].det_scores), _prior(distances, i, train)], 1)
                 for i in train]
        model = fit_logistic(np.concatenate([f[lab >= 0] for f, lab in zip(feats, labs,
                                                                           strict=True)]), y, l2)
        return [model.prob(np.stack([_logit(photos[i].det_scores), _prior(distances, i, train)],
                                    1)) for i in held]
    if method in ("stack_v", "stack_vp"):
        dist = distances if method == "stack_vp" else None
        feats = _stack_features(photos, train, train, dist, l2, inner=True)
        model = fit_logistic(np.concatenate([f[lab >= 0] for f, lab in zip(feats, labs,
                                                                           strict=True)]), y, l2)
        return [model.prob(f) for f in _stack_features(photos, train, held, dist, l2, False)]
    raise ValueError(f"unknown rescoring method {method!r}: expected verifier, verifier_q, "
                     "prior, stack_v or stack_vp")


def rescored_detections(photos: list[PhotoCrops], method: str, l2: float = 1.0,
                        distances: list[np.ndarray] | None = None) -> list[dict]:
    """Out-of-fold COCO results with every fold's detections rescored by ``method``."""
    out: list[dict] = []
    for fold in sorted({p.fold for p in photos}):
        held = [p for p in photos if p.fold == fold]
        scores = (rescore_fold(photos, fold, method, distances, l2) if method != "none"
                  else [p.det_scores for p in held])
        for p, s in zip(held, scores, strict=True):
            out += [{"image_id": p.image_id, "category_id": int(c), "score": float(v),
                     "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                    for b, v, c in zip(p.det_boxes, s, p.det_labels, strict=True)]
    return out
