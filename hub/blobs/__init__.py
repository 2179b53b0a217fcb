"""Content-addressed blob store behind a streaming protocol: a local directory (default) or S3.

`hub.blobs.base` holds what every store is (protocols, errors, the holdings of intakes),
`hub.blobs.local` the directory store, `hub.blobs.s3` the object store; `open_blobs` picks the one
configured. What is imported from `hub.blobs` keeps working from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.blobs.base import (
    BLOB_REF,
    CHUNK,
    PREFIX,
    BlobBackend,
    BlobHolding,
    BlobInfo,
    BlobNotFound,
    Blobs,
    BlobStoreMisconfigured,
    BlobStoreUnavailable,
    BlobTooLarge,
    BlobWriter,
    HoldingStore,
    digest_of,
    smaller,
)
from hub.blobs.local import SPOOL, BlobStore, LocalBlobWriter

if TYPE_CHECKING:
    from hub.config import BlobsConfig

__all__ = [
    "BLOB_REF",
    "CHUNK",
    "PREFIX",
    "SPOOL",
    "BlobBackend",
    "BlobHolding",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobStoreMisconfigured",
    "BlobStoreUnavailable",
    "BlobTooLarge",
    "BlobWriter",
    "Blobs",
    "HoldingStore",
    "LocalBlobWriter",
    "digest_of",
    "open_blobs",
    "smaller",
]


def open_blobs(config: BlobsConfig) -> BlobBackend:
    """The blob store as configured: the local directory, or the S3 bucket of ``s3://...``."""
    if config.s3 is not None:
        from hub.blobs.s3 import S3Blobs  # the S3 client's import costs a third of a second: only if used

        return S3Blobs(config.s3, max_size=int(config.max_size))
    assert config.path is not None  # the configuration has one or the other
    return BlobStore(config.path, max_size=int(config.max_size))
