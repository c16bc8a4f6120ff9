"""Shallow copies of the notify state's slots dataclasses, several times cheaper than
``dataclasses.replace`` (which builds a keyword call through ``__init__``): the sender
copies tens of thousands of them out of a kept state over a demo."""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def shallow_copy(obj: T, **changes: Any) -> T:
    """A copy of the dataclass instance ``obj`` (frozen or not) with ``changes`` applied;
    like ``dataclasses.replace`` without running ``__init__`` / ``__post_init__``."""
    cls: type = type(obj)
    new: T = object.__new__(cls)
    for name in _names(cls):
        object.__setattr__(new, name, getattr(obj, name))
    for name, value in changes.items():
        object.__setattr__(new, name, value)
    return new
