"""Batched prediction for many photos on a GPU: the predictor's steps with the pixels kept on
the device.

:class:`BatchedPredictor` runs the same steps as
:class:`~scratchdet.inference.predictor.TiledPredictor` (whose settings, localisation, tiling
and merge it reuses, so both give the same detections), arranged for throughput:

- ``read``: file bytes read by a pool of threads, ahead of the GPU;
- ``decode``: JPEGs decoded as one batch on the device (``torchvision.io.decode_jpeg``; nvJPEG
  on CUDA), EXIF orientation applied there; other formats, and any JPEG the batch decoder
  refuses, go through the CPU decoder the single-photo path uses;
- ``localise``: the localisation's views (the 1/8 view and its block-mean grid) pooled on the
  device, only the small grid copied to the host, the region search in worker processes
  (``locators``), the region cut as a view;
- ``model``: full batches of ``batch_size`` inputs (the next photos' inputs fill a batch that
  one photo group leaves short; with ``buckets``, inputs of one padded shape batched together,
  :class:`~scratchdet.inference.buckets.ShapeBuckets`, so that cuDNN's autotuner meets few
  shapes), padded but computed as alone (:class:`~scratchdet.models.batching.CanvasMask`),
  the backbone in bf16 when asked (:class:`~scratchdet.models.batching.HalfBackbone`; box
  heads stay float32);
- ``merge``: as the predictor does, on the host.

A preparation thread decodes and localises the next photos while the model runs on the
current ones. Everything works on the CPU too (``device="cpu"``: the same code, used by the
tests); flips, a decode scale and whole-photo (resize) models stay with the single-photo path.
"""

from __future__ import annotations

import copy
import io
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from scratchdet.geometry.localize import Region, locate_in_views
from scratchdet.geometry.tiling import Tile
from scratchdet.imaging import decode_at_scale
from scratchdet.inference.buckets import ShapeBuckets
from scratchdet.inference.predictor import TiledPrediction, TiledPredictor
from scratchdet.models.batching import AMP_DTYPES, CanvasMask, HalfBackbone, round_up
from scratchdet.structures import Detections

_ORIENTATION_TAG = 0x0112
_JPEG_MAGIC = b"\xff\xd8\xff"


def orient(image: Tensor, orientation: int) -> Tensor:
    """``uint8 [3, H, W]`` turned upright as EXIF ``orientation`` (1-8) says, as PIL's
    ``ImageOps.exif_transpose`` does (a view; 1 or an unknown value: unchanged)."""
    if orientation in (5, 6, 7, 8):  # the axes swap
        image = image.transpose(1, 2)
    flips = {2: (2,), 3: (1, 2), 4: (1,), 6: (2,), 7: (1, 2), 8: (1,)}.get(orientation, ())
    return image.flip(flips) if flips else image


def _header(data: bytes | bytearray) -> tuple[int, int] | None:
    """``(pixels, EXIF orientation)`` read from an encoded photo's header (``None``: PIL
    cannot open it, or refuses it as a decompression bomb)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.width * im.height, int(im.getexif().get(_ORIENTATION_TAG, 1))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def exif_orientation(data: bytes | bytearray) -> int:
    """The EXIF orientation of an encoded photo (1 when it has none or cannot be read)."""
    header = _header(data)
    return 1 if header is None else header[1]


def _device_orientation(data: bytes | bytearray) -> int | None:
    """The EXIF orientation of a JPEG the device decodes (at most PIL's bomb limit in pixels);
    ``None`` for anything else, which goes to the host decoder and its messages."""
    header = _header(data) if data[:3] == _JPEG_MAGIC else None
    if header is None or header[0] > (Image.MAX_IMAGE_PIXELS or float("inf")):
        return None
    return header[1]


@dataclass
class _Photo:
    """One photo on its way through the pipeline."""

    path: Path
    data: bytearray | None = None
    image: Tensor | None = None  # uint8 [3, H, W] on the device, upright
    region: Region | None = None
    red: bool = False
    tiles: list[Tile] | None = None
    error: Exception | None = None
    timings: dict[str, float] | None = None
    outputs: list[Detections] = field(default_factory=list)  # one per tile, as they come


class BatchedPredictor:
    """Predict many photos with ``predictor``'s settings, batching on ``device``.

    Args:
        predictor: the single-photo predictor whose settings, localisation and merge are used
            (from :func:`scratchdet.inference.load.build_predictor`); no flips, scale 1.
        model: its detector as a torchvision-convention ``nn.Module`` (copied: the copy gets
            the batching hooks, its padding multiple and precision).
        device: ``"cuda"``, ``"cuda:1"`` or ``"cpu"``.
        batch_size: photos decoded together and model inputs per call.
        amp: ``"bf16"``/``"fp16"``: the backbone under autocast; ``None``: float32.
        readers: threads reading files ahead.
        channels_last: the model's weights in channels-last memory order.
        locators: worker processes that find the part regions (numpy work that would hold
            the preparing thread); 0: that thread does it.
        snap: a batch is padded to a multiple of this (fewer distinct shapes for the
            convolution autotuner); the model's own padding multiple at least (default: 512
            with buckets, else 128).
        autotune: cuDNN times its algorithms for each new input shape during this
            predictor's model calls (and ``buckets`` defaults to on): about a minute of tuning
            at the start, model calls several times faster afterwards (docs/speed.md).
        buckets: batch inputs of one padded shape together (photos come out in order all the
            same; at most ``max_waiting`` photos wait for their batch to fill) and pad every
            batch to ``batch_size`` inputs, so the model meets one shape per bucket.
        max_waiting: photos held back at most while their inputs wait in a bucket (default
            four batches).
    """

    def __init__(self, predictor: TiledPredictor, model: nn.Module, device: str = "cuda",
                 batch_size: int = 8, amp: str | None = None, readers: int = 4,
                 channels_last: bool = False, snap: int | None = None, locators: int = 0,
                 autotune: bool = False, buckets: bool | None = None,
                 max_waiting: int | None = None) -> None:
        if predictor.tta or predictor.scale != 1.0 or predictor.max_side is not None:
            raise ValueError("batched prediction runs at scale 1 without flips or max_side; "
                             "use the single-photo predictor for those")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if amp is not None and amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {', '.join(AMP_DTYPES)} or None, got {amp!r}")
        self.predictor, self.device = predictor, torch.device(device)
        self.batch_size, self.readers, self.amp = batch_size, readers, amp
        self.autotune = autotune
        self.buckets = autotune if buckets is None else buckets
        self.max_waiting = max_waiting or 4 * batch_size
        snap = snap or (512 if self.buckets else 128)
        model = copy.deepcopy(model).eval().to(self.device)  # hooks and padding: our copy's
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if amp is not None:
            model.backbone = HalfBackbone(model.backbone, AMP_DTYPES[amp])
        self.model, self.channels_last = model, channels_last
        self._locators = None if locators < 1 else ProcessPoolExecutor(
            locators, mp_context=multiprocessing.get_context("spawn"))
        self.mask = CanvasMask(model, model.transform.size_divisible)
        model.transform.size_divisible = round_up(max(snap, 1), self.mask.divisible)

    # -- stages ---------------------------------------------------------------------------
    def decode(self, photos: Sequence[_Photo]) -> None:
        """Fill ``image`` of each photo (its ``error`` when it cannot be decoded): JPEGs as one
        batch on the device (one by one when the batch fails), the rest on the host."""
        found = [(p, _device_orientation(p.data)) for p in photos if p.data is not None]
        jpegs = [p for p, orientation in found if orientation is not None]
        orientations = [orientation for _, orientation in found if orientation is not None]
        if jpegs:
            try:
                images = decode_jpeg([torch.frombuffer(p.data, dtype=torch.uint8) for p in jpegs],
                                     mode=ImageReadMode.RGB, device=self.device)
            except RuntimeError:  # one bad file fails the batch
                images = [self._decode_one(p.data) for p in jpegs]
            for p, image, orientation in zip(jpegs, images, orientations, strict=True):
                if image is not None:
                    p.image = orient(image, orientation)
        for p in photos:
            if p.image is None and p.error is None:
                self._decode_on_host(p)

    def _decode_one(self, data: bytearray) -> Tensor | None:
        try:
            return decode_jpeg(torch.frombuffer(data, dtype=torch.uint8),
                               mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            return None

    def _decode_on_host(self, photo: _Photo) -> None:
        """The single-photo path's decoder (EXIF orientation, bomb check, its messages)."""
        try:
            image, _ = decode_at_scale(photo.path)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            text = str(err)
            photo.error = ValueError(text if str(photo.path) in text
                                     else f"{photo.path}: cannot read as an image ({text})")
            return
        photo.image = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).to(self.device)

    def views(self, photo: _Photo) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The localisation's views of a decoded photo, pooled on the device: the block-mean
        grid :func:`~scratchdet.geometry.localize.locate_part` works on and, for the red-part
        check, the 1/8 view (rounded as PIL's ``reduce`` does); only they cross to the host."""
        assert photo.image is not None
        width = photo.image.shape[2]
        factor, localize = self.predictor.reduction(width, width), self.predictor.localize
        if factor is None:
            return None, None
        pooled = photo.image.float() if factor == 1 else F.avg_pool2d(
            photo.image[None].float(), factor, ceil_mode=True)[0].add_(0.5).floor_()
        small = None
        if self.predictor.red_polarity:
            small = pooled.to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        if localize is None:
            return None, small
        grid = F.avg_pool2d(pooled[None], localize.block)[0] if localize.block > 1 else pooled
        return grid.permute(1, 2, 0).cpu().numpy(), small

    def localise(self, photo: _Photo, found: tuple[Region, bool] | None = None) -> None:
        """Region, red flag and model inputs (tiles) of a decoded photo, as the single-photo
        predictor finds them (``found``: region and red flag already worked out)."""
        assert photo.image is not None
        full = (int(photo.image.shape[2]), int(photo.image.shape[1]))
        if found is None:
            found = locate_in_views(*self.views(photo), full, self.predictor.localize,
                                    self.predictor.red_polarity)
        photo.region, photo.red = found
        photo.tiles = self.predictor.plan_tiles(full, full, photo.region)

    def crop(self, photo: _Photo, tile: Tile) -> Tensor:
        """The float ``[3, h, w]`` 0-1 model input of ``photo`` at ``tile`` (a red part in the
        white parts' polarity when the predictor asks for it)."""
        assert photo.image is not None
        x0, y0, x1, y1 = tile
        crop = photo.image[:, y0:y1, x0:x1]
        if photo.red:
            crop = (255 - crop[1:2]).expand(3, -1, -1)
        return crop.float().div_(255)  # batched into [B, 3, H, W] by the model's transform

    @torch.inference_mode()
    def detect(self, batch: list[Tensor]) -> list[Detections]:
        """The model on one batch of inputs (each as if alone: :class:`CanvasMask`);
        detections on the host."""
        self.mask.set(batch, self.model.transform.size_divisible)
        tuning = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = tuning or self.autotune
        try:
            outputs = self.model(batch)
        finally:
            self.mask.clear()  # the hooks do nothing for anyone else using the network
            torch.backends.cudnn.benchmark = tuning
        return [Detections.from_arrays(o["boxes"].float().cpu().numpy(),
                                       o["scores"].float().cpu().numpy(),
                                       o["labels"].cpu().numpy()) for o in outputs]

    # -- the pipeline ---------------------------------------------------------------------
    def predict_many(self, photos: Iterable[str | Path]
                     ) -> Iterator[tuple[Path, TiledPrediction | Exception]]:
        """``(path, prediction)`` for each photo in order, or ``(path, error)`` for one that
        cannot be read; later photos are decoded while the model runs. An error of the
        preparing thread itself (not of one photo) is raised here."""
        prepared: queue.Queue[list[_Photo] | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()
        worker = threading.Thread(target=self._prepare_all, args=(photos, prepared, stop),
                                  daemon=True)
        worker.start()
        waiting: deque[_Photo] = deque()  # in order, until their last input has run
        multiple = self.model.transform.size_divisible if self.buckets else 1 << 30
        inputs: ShapeBuckets[tuple[_Photo, Tile]] = ShapeBuckets(self.batch_size, multiple)
        try:
            while (group := prepared.get()) is not None:
                if isinstance(group, BaseException):
                    raise group
                waiting.extend(group)
                for item in ((p, t) for p in group if p.error is None for t in p.tiles or []):
                    x0, y0, x1, y1 = item[1]
                    if (batch := inputs.add(item, x1 - x0, y1 - y0)):
                        self._run(batch)
                yield from self._finished(waiting)
                while len(waiting) > self.max_waiting and len(inputs):
                    self._run(inputs.pop_oldest())
                    yield from self._finished(waiting)
            for batch in inputs.drain():
                self._run(batch)
            yield from self._finished(waiting)
        finally:
            stop.set()
            while worker.is_alive():
                try:
                    prepared.get_nowait()
                except queue.Empty:
                    worker.join(0.05)

    def _prepare_all(self, photos: Iterable[str | Path],
                     out: queue.Queue[list[_Photo] | BaseException | None],
                     stop: threading.Event) -> None:
        """Read (up to two batches ahead), decode and localise, one batch at a time."""
        try:
            with ThreadPoolExecutor(self.readers) as pool, torch.inference_mode():
                ahead: deque[Future[_Photo]] = deque()
                paths = iter(photos)
                while not stop.is_set():
                    for path in islice(paths, 2 * self.batch_size - len(ahead)):
                        ahead.append(pool.submit(_read, Path(path)))
                    if not ahead:
                        return
                    count = min(self.batch_size, len(ahead))
                    out.put(self._prepare([ahead.popleft().result() for _ in range(count)]))
        except BaseException as err:  # handed to the consumer, which raises it
            out.put(err)
        finally:
            out.put(None)

    def _prepare(self, group: list[_Photo]) -> list[_Photo]:
        t = time.perf_counter()
        self.decode(group)
        decoded = time.perf_counter()
        ready = [p for p in group if p.image is not None]
        jobs = []
        for p in ready:
            full = (int(p.image.shape[2]), int(p.image.shape[1]))
            args = (*self.views(p), full, self.predictor.localize, self.predictor.red_polarity)
            jobs.append(self._locators.submit(locate_in_views, *args) if self._locators
                        else locate_in_views(*args))
        for p, job in zip(ready, jobs, strict=True):
            self.localise(p, job.result() if isinstance(job, Future) else job)
        share = (time.perf_counter() - decoded) / max(len(ready), 1)
        for p in group:
            p.timings = {"decode": (decoded - t) / len(group), "localise": share}
            p.data = None
        return group

    def close(self) -> None:
        """Stop the localisation worker processes (a later call starts them again)."""
        if self._locators is not None:
            self._locators.shutdown()
            self._locators = None

    def _run(self, inputs: Sequence[tuple[_Photo, Tile]]) -> None:
        """The model on one batch of inputs; each photo gets its outputs and its share of
        the time."""
        t = time.perf_counter()
        batch = [self.crop(p, tile) for p, tile in inputs]
        if self.buckets:  # one shape per bucket: empty canvases fill the batch
            side = self.mask.divisible
            batch += [torch.zeros(3, side, side, device=self.device)] * (self.batch_size
                                                                         - len(batch))
        found = self.detect(batch)[: len(inputs)]
        share = (time.perf_counter() - t) / len(inputs)
        for (p, _), out in zip(inputs, found, strict=True):
            p.outputs.append(out)
            if p.timings is not None:
                p.timings["model"] = p.timings.get("model", 0.0) + share

    def _finished(self, waiting: deque[_Photo]
                  ) -> Iterator[tuple[Path, TiledPrediction | Exception]]:
        """The photos at the front of ``waiting`` whose inputs have all run, merged."""
        while waiting and (waiting[0].error is not None
                           or len(waiting[0].outputs) == len(waiting[0].tiles or [])):
            p = waiting.popleft()
            if p.error is not None:
                yield p.path, p.error
                continue
            start = time.perf_counter()
            size = _size(p)
            detections = self.predictor.merge_outputs(p.outputs, p.tiles or [], size, size)
            timings = {**(p.timings or {}), "merge": time.perf_counter() - start}
            timings["total"] = sum(timings.values())
            p.image, p.outputs = None, []
            yield p.path, TiledPrediction(detections, p.region, p.tiles or [], timings, p.red)


def _size(photo: _Photo) -> tuple[int, int]:
    assert photo.image is not None
    return (int(photo.image.shape[2]), int(photo.image.shape[1]))


def _read(path: Path) -> _Photo:
    try:
        with path.open("rb") as f:
            data = bytearray(os.fstat(f.fileno()).st_size)
            f.readinto(data)
        return _Photo(path, data)
    except OSError as err:
        return _Photo(path, error=ValueError(f"{path}: cannot read ({err.strerror or err})"))
