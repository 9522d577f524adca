"""Which backend serves a log: a storage object, a directory, or a URL by its scheme.

One lookup, used by ``open_log``, ``AuditLogger``, ``compact`` and the command line. As in
fsspec's registry, a scheme names the module and class that serve it, imported only when a URL
with that scheme is opened (so ``import comply_lab`` does not load boto3), with a hint on what
to install when the import fails. Any other path is a directory
([`FileStorage`][comply_lab.storage.file.FileStorage]); ``file://`` URLs are paths.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Protocol, cast

from comply_lab.crypto.signing import PrivateKeyLike
from comply_lab.errors import ConfigurationError
from comply_lab.storage.backend import BackendAdapter, StorageBackend
from comply_lab.storage.base import Storage
from comply_lab.storage.file import FileStorage
from comply_lab.storage.location import local_path, url_scheme


class FromUrl(Protocol):
    """A backend class that opens a log from its URL."""

    def from_url(self, url: str, *, signing_key: PrivateKeyLike | None = None) -> Storage:
        """Return the store at ``url``."""
        ...


@dataclass(frozen=True)
class Backend:
    """Where the backend serving one URL scheme lives.

    Attributes:
        module: The module that defines it.
        name: The class, whose ``from_url(url, signing_key=)`` opens a log.
        install: What to install when the module cannot be imported.
    """

    module: str
    name: str
    install: str


BACKENDS: dict[str, Backend] = {
    "s3": Backend("comply_lab.storage.s3", "S3Storage", "pip install boto3"),
}
"""Registered URL schemes (without ``://``)."""


def register(scheme: str, backend: Backend) -> None:
    """Serve ``scheme://`` URLs with ``backend`` (replacing any earlier registration)."""
    BACKENDS[scheme] = backend


def open_storage(
    target: Storage | str | os.PathLike[str], *, signing_key: PrivateKeyLike | None = None
) -> Storage:
    """Return the storage for ``target``.

    A storage object is used as is (one written for the original API's ``StorageBackend``
    protocol is wrapped in a `BackendAdapter`); a URL
    goes to the backend registered for its scheme
    (``s3://bucket/prefix``: S3Storage, with credentials and region from boto3's chain);
    any other path is a log directory (FileStorage).

    Args:
        target: The storage, URL or path.
        signing_key: Signs the records the storage appends (for paths and URLs only).

    Raises:
        ConfigurationError: ``target`` is a URL whose scheme no backend serves, its
            backend cannot be imported (the message says what to install), a storage
            object comes with a ``signing_key``, or ``target`` is neither.
    """
    if isinstance(target, str | os.PathLike):
        scheme = url_scheme(target)
        if scheme is None:
            return FileStorage(local_path(target), signing_key=signing_key)
        return backend_class(scheme).from_url(os.fspath(target), signing_key=signing_key)
    if not isinstance(target, Storage) and isinstance(target, StorageBackend):
        return BackendAdapter(target)  # written for the original API: see storage.backend
    if not isinstance(target, Storage):
        raise ConfigurationError(
            f"expected a path, a URL or a storage object, got {type(target).__name__}"
        )
    if signing_key is not None:
        raise ConfigurationError(
            "signing_key= goes with a path or URL; give a storage object its key when you "
            "make it (FileStorage(..., signing_key=...))"
        )
    return target


def backend_class(scheme: str) -> FromUrl:
    """Return the class serving ``scheme://`` URLs, importing its module.

    Raises:
        ConfigurationError: no backend serves the scheme, or its module cannot be imported.
    """
    backend = BACKENDS.get(scheme)
    if backend is None:
        served = ", ".join(f"{s}://" for s in sorted(BACKENDS))
        raise ConfigurationError(
            f"no storage backend for {scheme}:// URLs (served: {served}); pass a directory "
            "path or a storage object"
        )
    try:
        module = importlib.import_module(backend.module)
    except ImportError as err:
        raise ConfigurationError(
            f"{scheme}:// logs need {err.name or backend.module}: {backend.install}"
        ) from err
    return cast(FromUrl, getattr(module, backend.name))
