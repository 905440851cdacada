"""The gallery behind the service (:class:`maskface.Gallery`, sharing the service's recogniser): every call runs on
one thread of its own, so the store's connection stays on it, the event loop never waits on the database, and
enrolments and removals (of one person or of several) never interleave: each is whole before the next starts.

Only templates are stored (vectors and what the front end saw); the uploaded images are never written anywhere."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from maskface.apps.service.problems import ApiError

if TYPE_CHECKING:
    from maskface.apps.gallery import Gallery
    from maskface.apps.recognizer import Recognizer

#: a person's name: printable, no slash (it is a path segment of DELETE /v1/people/{person}), at most this long
MAX_PERSON_LENGTH = 128


def check_person(name: str | None) -> str:
    """A person's name as the API accepts it, else 422."""
    if name is None or not name.strip():
        raise ApiError(422, "invalid_person", "give the person's name (form field 'person')")
    if len(name) > MAX_PERSON_LENGTH or "/" in name or any(not c.isprintable() for c in name):
        raise ApiError(422, "invalid_person", f"a person's name is 1-{MAX_PERSON_LENGTH} printable characters "
                                              "without '/'")
    return name


def upload_source(data: bytes) -> str:
    """An uploaded image's source name: a hash of its bytes, so the same photo enrolled twice is one template."""
    return "upload:sha256:" + hashlib.sha256(data).hexdigest()[:32]


class GalleryService:
    def __init__(self, location: str, recognizer: Recognizer):
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="maskface-gallery")
        self.gallery: Gallery = self._thread.submit(self._open, location, recognizer).result()

    @staticmethod
    def _open(location: str, recognizer: Recognizer) -> Gallery:
        from maskface.apps.gallery import Gallery

        return Gallery(location, model=recognizer, create=True)

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: function(*args, **kwargs))

    def counts(self) -> tuple[int, int]:
        """(people, templates), on the gallery's thread."""
        return self._thread.submit(self.gallery.store.counts).result()

    def close(self) -> None:
        self._thread.submit(self.gallery.close).result()
        self._thread.shutdown(wait=True)
