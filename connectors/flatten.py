"""Flatten nested documents into JSON paths (``address.city``, ``tags[]``, ``items[].sku``)."""

from __future__ import annotations

from typing import Any


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Map every leaf of ``doc`` to its JSON path.

    Lists become ``path[]``; a list of scalars gives a list value, a list of objects
    gives one path per nested key, each with the list of values found there.
    """
    out: dict[str, Any] = {}
    _walk(doc, prefix, out, in_list=False)
    return out


def _walk(value: Any, path: str, out: dict[str, Any], *, in_list: bool) -> None:
    if isinstance(value, dict):
        if not value and path:
            _put(out, path, None, in_list=in_list)
        for key, child in value.items():
            _walk(child, f"{path}.{key}" if path else str(key), out, in_list=in_list)
    elif isinstance(value, list):
        for item in value:
            _walk(item, f"{path}[]", out, in_list=True)
    else:
        _put(out, path or "value", value, in_list=in_list)


def _put(out: dict[str, Any], path: str, value: Any, *, in_list: bool) -> None:
    if not in_list:
        out[path] = value
        return
    existing = out.setdefault(path, [])
    existing.append(value)
