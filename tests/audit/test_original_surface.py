"""The original tool's documented surface, read from the original package itself.

Every public name of ``rotalabs_comply.audit`` exists here, every documented parameter
has the same name and default, every ``StorageBackend`` method is a coroutine on every
backend, and each backend satisfies the original's own runtime-checkable protocol. What
the methods do is the storage conformance suite's business (``tests/storage_contract.py``
runs write, read, list_entries, delete and count on every backend).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

import pytest
import rotalabs_comply.audit as original
from rotalabs_comply.audit.storage import StorageBackend as OriginalBackend

import comply_lab.audit as ours
from comply_lab.storage.s3 import S3Storage

CLASSES = ["AuditLogger", "EncryptionManager", "FileStorage", "MemoryStorage", "S3Storage"]
BACKEND_METHODS = ["write", "read", "list_entries", "delete", "count"]


def _parameters(function: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


@pytest.mark.parametrize("module", ["", ".encryption", ".logger", ".storage"])
def test_every_public_name_is_here(module: str):
    """comply_lab.audit and its modules offer every name the original's do."""
    theirs = importlib.import_module(f"rotalabs_comply.audit{module}")
    mine = importlib.import_module(f"comply_lab.audit{module}")
    names = [n for n in dir(theirs) if not n.startswith("_")]
    if module:  # a module's own definitions, not what it imports
        names = [
            n for n in names if getattr(getattr(theirs, n), "__module__", "") == theirs.__name__
        ]
    missing = [n for n in names if not hasattr(mine, n)]
    assert not missing, missing


@pytest.mark.parametrize("name", CLASSES)
def test_constructors_take_the_same_arguments_and_defaults(name: str):
    """Each documented constructor parameter exists here, in order, with its default."""
    theirs = _parameters(getattr(original, name).__init__)
    mine = _parameters(getattr(ours, name).__init__)
    assert list(mine)[: len(theirs)] == list(theirs)
    for parameter, default in theirs.items():
        assert mine[parameter] == default, (name, parameter)


@pytest.mark.parametrize("name", CLASSES)
def test_methods_take_the_same_arguments_and_defaults(name: str):
    """Each documented method exists, async where the original's is, with its parameters."""
    for method, function in inspect.getmembers(getattr(original, name), callable):
        if method.startswith("_") or method in ("from_dict", "to_dict"):
            continue
        mine = getattr(getattr(ours, name), method)
        assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(function), method
        theirs = _parameters(function)
        found = _parameters(mine)
        assert list(found)[: len(theirs)] == list(theirs), (name, method)
        assert all(found[p] == d for p, d in theirs.items()), (name, method)


@pytest.mark.parametrize("name", ["generate_key", "encrypt", "decrypt", "hash_content"])
def test_helpers_take_the_same_arguments(name: str):
    """The module-level helpers have the original's parameters."""
    assert _parameters(getattr(ours, name)) == _parameters(getattr(original, name))


def test_entries_have_the_original_fields_and_defaults():
    """AuditEntry's first seventeen fields are the original's, in order, with its defaults."""
    theirs = dataclasses.fields(original.AuditEntry)
    mine = dataclasses.fields(ours.AuditEntry)[: len(theirs)]
    assert [f.name for f in mine] == [f.name for f in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert a.default == b.default, a.name
        if b.default_factory is not dataclasses.MISSING:
            assert a.default_factory() == b.default_factory(), a.name


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: ours.MemoryStorage(),
        lambda tmp: ours.FileStorage(str(tmp)),
        lambda tmp: ours.FileStorage(str(tmp), format="parquet"),
        lambda tmp: S3Storage("bucket-not-contacted", offline=True, spool_dir=tmp),
    ],
    ids=["memory", "jsonl", "parquet", "s3"],
)
def test_every_backend_is_an_original_storage_backend(make: Any, tmp_path):
    """The original's runtime-checkable protocol accepts each backend; its methods are async."""
    storage = make(tmp_path)
    assert isinstance(storage, OriginalBackend)
    for method in BACKEND_METHODS:
        assert inspect.iscoroutinefunction(getattr(storage, method)), method
        assert callable(getattr(storage, f"{method}_sync")), method
    storage.close()
