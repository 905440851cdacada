"""Where galleries keep their templates: one interface (:class:`~maskface.store.base.Store`), two backends.

- :class:`~maskface.store.sqlite.SQLiteStore`: one SQLite file (WAL, one transaction per batch) is the source of
  truth; a FAISS index beside it (``GALLERY.faiss``) is a cache, rebuilt or caught up from SQLite when stale.
- :class:`~maskface.store.postgres.PostgresStore`: PostgreSQL with pgvector and its HNSW index, for several clients.

This layer knows vectors and records, not faces or models: :class:`maskface.apps.gallery.Gallery` embeds, checks
the model and scores.
"""

from __future__ import annotations

from pathlib import Path

from maskface.store.base import GalleryInfo, Store, TemplateRecord

__all__ = ["GalleryInfo", "Store", "TemplateRecord", "is_postgres_url", "open_store"]


def is_postgres_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path, create: bool = True) -> Store:
    """The store at ``location``: a ``postgresql://`` URL, else a path to a SQLite gallery file."""
    if is_postgres_url(location):
        from maskface.store.postgres import PostgresStore

        return PostgresStore(str(location), create=create)
    from maskface.store.sqlite import SQLiteStore

    return SQLiteStore(location, create=create)
