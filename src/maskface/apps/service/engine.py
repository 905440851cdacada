"""Images to answers: decode each upload within the limits, find and align its face on a small pool of threads
(each with a face pipeline of its own), embed the chips through the micro-batching queue, and score them as
:meth:`maskface.apps.recognizer.Recognizer.verify` would (the same pair thresholds)."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from maskface.apps.recognizer import Recognizer
from maskface.apps.service.batcher import MicroBatcher
from maskface.apps.service.gallery import GalleryService, check_person, upload_source
from maskface.apps.service.problems import ApiError, from_maskface_error
from maskface.apps.service.settings import ServiceSettings
from maskface.apps.service.uploads import Part
from maskface.errors import GalleryError, MaskfaceError
from maskface.face.pipeline import Face, FacePipeline
from maskface.io.images import ImageLimits, decode_image
from maskface.models.embedder import compare, is_same


@dataclass
class EmbeddedFace:
    """One uploaded image's face, its embedding, and whether a mask-aware model completed it (None: not one)."""

    label: str
    face: Face
    vector: np.ndarray
    completed: bool | None

    @property
    def pair_flag(self) -> bool:
        """The face's side of a pair type: completed by a mask-aware model, else the front end's mask status."""
        return bool(self.completed) if self.completed is not None else bool(self.face.masked)


def png_data_url(chip: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def face_answer(item: EmbeddedFace, chip: bool = False) -> dict:
    """A face as the API shows it: where it is, whether it is masked, which detector found it, whether the model
    completed it, and (when asked) its aligned chip as a PNG data URL."""
    face = item.face
    answer = {"image": item.label, "box": [round(float(v), 1) for v in face.box], "detector": face.detector,
              "masked": face.masked, "mask_probability": None if face.mask_probability is None
              else round(float(face.mask_probability), 4), "completed": item.completed,
              "faces_found": face.faces_found}
    if chip:
        answer["chip"] = png_data_url(face.chip)
    return answer


class Engine:
    """The model, its face pipelines and the batching queue, shared by every request of one server process."""

    def __init__(self, settings: ServiceSettings, recognizer: Recognizer, on_batch=None,
                 gallery: GalleryService | None = None):
        self.settings = settings
        self.recognizer = recognizer
        self.gallery = gallery
        limits = settings.limits
        self.image_limits = ImageLimits(max_pixels=limits.max_pixels, max_file_bytes=limits.max_upload_bytes)
        self._local = threading.local()
        self._align_pool = ThreadPoolExecutor(settings.align_threads, thread_name_prefix="maskface-align")
        b = settings.batching
        self.batcher = MicroBatcher(self.infer, b.max_batch, b.max_wait, b.max_queue, on_batch)

    @property
    def metric(self) -> str:
        return self.recognizer.metric

    @property
    def model(self) -> str:
        return self.recognizer.embedder.spec.name

    def infer(self, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The model on a batch of chips (the batcher's one inference thread calls this), in forward passes of at
        most ``max_batch`` chips (a request larger than that is the only way a batch can be)."""
        step = self.settings.batching.max_batch
        vectors, completed = [], []
        for start in range(0, len(chips), step):
            found, was_completed = self.recognizer.embed_chips_with_completion(chips[start : start + step])
            vectors.append(found)
            completed.append(None if was_completed is None else np.asarray(was_completed, bool))
        return np.concatenate(vectors), None if completed[0] is None else np.concatenate(completed)

    def warm_up(self) -> None:
        """An alignment and a forward pass before the server says it is ready (the first ones are slow)."""
        size = self.recognizer.embedder.spec.size
        self.infer(np.zeros((2, size, size, 3), np.uint8))
        self._pipeline().detect(np.zeros((64, 64, 3), np.uint8))

    def _pipeline(self) -> FacePipeline:
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            pipeline = self._local.pipeline = FacePipeline(self.recognizer.face_config)
        return pipeline

    # -- images -> faces ---------------------------------------------------------------------------------------
    def _align(self, part: Part, label: str) -> Face:
        """Decode (pixel count checked from the header first) and align one upload; errors name its label."""
        try:
            with Image.open(io.BytesIO(part.data)) as header:
                width, height = header.size
        except Exception:
            width = height = 0  # not an image Pillow knows: decode_image below says why
        if width * height > self.settings.limits.max_pixels:
            raise ApiError(413, "too_many_pixels", f"{label}: {width} x {height} pixels exceeds the limit of "
                                                   f"{self.settings.limits.max_pixels / 1e6:g} Mpx")
        try:
            image = decode_image(part.data, label, self.image_limits)
            return self._pipeline().align(image, label)
        except MaskfaceError as exc:
            raise from_maskface_error(exc, label) from None

    async def faces(self, parts: list[Part], labels: list[str]) -> list[Face]:
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self._align_pool, self._align, part, label) for part, label in zip(parts, labels)]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    async def embedded(self, parts: list[Part], labels: list[str]) -> list[EmbeddedFace]:
        """Each upload's face with its embedding (one trip through the batching queue for all of them)."""
        faces = await self.faces(parts, labels)
        vectors, completed = await self.batcher.embed(np.stack([face.chip for face in faces]))
        return [EmbeddedFace(label, face, vectors[i], None if completed is None else bool(completed[i]))
                for i, (label, face) in enumerate(zip(labels, faces))]

    # -- answers -----------------------------------------------------------------------------------------------
    def pair_threshold(self, a: EmbeddedFace, b: EmbeddedFace) -> float:
        return float(self.recognizer.pair_threshold(a.pair_flag, b.pair_flag))

    async def verify(self, parts: list[Part], labels: list[str], chips: bool) -> dict:
        a, b = await self.embedded(parts, labels)
        score = float(compare(a.vector, b.vector, self.metric)[0])
        threshold = self.pair_threshold(a, b)
        return {"same": is_same(score, threshold, self.metric), "score": round(score, 6),
                "threshold": round(threshold, 6), "metric": self.metric, "model": self.model,
                "faces": [face_answer(a, chips), face_answer(b, chips)]}

    async def embed(self, parts: list[Part], labels: list[str], chips: bool) -> dict:
        items = await self.embedded(parts, labels)
        return {"model": self.model, "metric": self.metric, "dimension": int(items[0].vector.shape[0]),
                "embeddings": [{"face": face_answer(item, chips), "vector": [float(v) for v in item.vector]}
                               for item in items]}

    # -- the gallery -------------------------------------------------------------------------------------------
    def gallery_or_404(self) -> GalleryService:
        if self.gallery is None:
            raise ApiError(404, "no_gallery", "this server has no gallery (start it with --gallery)")
        return self.gallery

    async def identify(self, parts: list[Part], labels: list[str], top: int, combine: str, chips: bool) -> dict:
        gallery = self.gallery_or_404()
        (probe,) = await self.embedded(parts, labels)
        (found,) = await gallery.call(gallery.gallery.identify_embeddings, probe.vector[None],
                                      masked=[probe.face.masked], completed=[probe.completed], top=top,
                                      combine=combine)
        return {"person": found.person, "unknown": found.unknown, "metric": found.metric, "model": self.model,
                "combine": combine, "face": face_answer(probe, chips),
                "candidates": [{"person": c.person, "score": round(c.score, 6), "threshold": round(c.threshold, 6),
                                "accepted": c.accepted, "templates": c.templates} for c in found.candidates]}

    async def enroll(self, person: str | None, parts: list[Part], labels: list[str]) -> tuple[int, dict]:
        """Enrol the face of each image as a template of ``person``: images without a usable face are skipped
        with their reason (422 when none is usable); the same photo twice is one template. (status, answer)"""
        gallery = self.gallery_or_404()
        person = check_person(person)
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*[loop.run_in_executor(self._align_pool, self._align, part, label)
                                         for part, label in zip(parts, labels)], return_exceptions=True)
        skipped, kept = [], []
        for part, label, result in zip(parts, labels, results):
            if isinstance(result, ApiError):
                skipped.append({"image": label, "code": result.code, "reason": result.message})
            elif isinstance(result, BaseException):
                raise result
            else:
                kept.append((part, label, result))
        if not kept:
            raise ApiError(422, "no_usable_image", "no image has a usable face: " +
                           "; ".join(s["reason"] for s in skipped))
        vectors, completed = await self.batcher.embed(np.stack([face.chip for _, _, face in kept]))
        added = await gallery.call(
            gallery.gallery.add_embeddings, person, vectors, [upload_source(part.data) for part, _, _ in kept],
            masked=[face.masked for _, _, face in kept],
            completed=None if completed is None else [bool(c) for c in completed],
            detectors=[face.detector for _, _, face in kept])
        answer = {"person": person, "added": int(added), "already": len(kept) - int(added), "skipped": skipped}
        return (201 if added else 200), answer

    async def remove(self, person: str) -> dict:
        gallery = self.gallery_or_404()
        try:
            removed = await gallery.call(gallery.gallery.remove, person)
        except GalleryError:  # no such person
            removed = 0
        if not removed:
            raise ApiError(404, "no_such_person", f"no person {person!r} in the gallery")
        return {"person": person, "removed": int(removed)}

    async def people(self, offset: int, limit: int) -> dict:
        gallery = self.gallery_or_404()
        everyone = await gallery.call(gallery.gallery.store.people)
        page = everyone[offset : offset + limit]
        return {"count": len(everyone), "offset": offset,
                "people": [{"person": name, "templates": count} for name, count in page]}

    async def close(self) -> None:
        await self.batcher.stop()
        self._align_pool.shutdown(wait=False, cancel_futures=True)
        if self.gallery is not None:
            await asyncio.to_thread(self.gallery.close)
