"""Flatten nested documents into JSON paths (``address.city``, ``tags[]``, ``items[].sku``)."""

from __future__ import annotations

import json
import re
from typing import Any

from connectors.errors import SourceError

#: Nesting levels piiport reads. Python's own JSON decoder stops near 1,000 (a RecursionError);
#: real data rarely nests more than a few dozen levels.
MAX_DEPTH = 500


class TooDeep(SourceError):
    """A document nests deeper than ``MAX_DEPTH``; ``path`` is where reading stopped."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"JSON nested deeper than {MAX_DEPTH} levels, at {short_path(path)}; piiport reads at most "
            f"{MAX_DEPTH} levels: flatten the data or exclude it"
        )


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Map every leaf of ``doc`` to its JSON path.

    Lists become ``path[]``; a list of scalars gives a list value, a list of objects
    gives one path per nested key, each with the list of values found there.
    Raises ``TooDeep`` past ``MAX_DEPTH`` levels.
    """
    out: dict[str, Any] = {}
    _walk(doc, prefix, out, in_list=False, depth=0)
    return out


def _walk(value: Any, path: str, out: dict[str, Any], *, in_list: bool, depth: int) -> None:
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise TooDeep(path)
        if not value and path:
            _put(out, path, None, in_list=in_list)
        for key, child in value.items():
            _walk(child, f"{path}.{key}" if path else str(key), out, in_list=in_list, depth=depth + 1)
    elif isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise TooDeep(path)
        for item in value:
            _walk(item, f"{path}[]", out, in_list=True, depth=depth + 1)
    else:
        _put(out, path or "value", value, in_list=in_list)


def _put(out: dict[str, Any], path: str, value: Any, *, in_list: bool) -> None:
    if not in_list:
        out[path] = value
        return
    existing = out.setdefault(path, [])
    existing.append(value)


def loads(text: str, where: str = "") -> Any:
    """``json.loads``, with ``TooDeep`` (and the path) where Python's decoder gives up."""
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep(join_path(where, path_at_depth(text, MAX_DEPTH))) from None


def join_path(outer: str, inner: str) -> str:
    """``a`` and ``b[0]`` make ``a.b[0]``; ``a`` and ``[0].b`` make ``a[0].b``."""
    if not outer or not inner:
        return outer or inner
    return f"{outer}{inner}" if inner.startswith("[") else f"{outer}.{inner}"


_SEGMENT = re.compile(r"(\[\d*\]|\.[^.\[]+)")


def short_path(path: str, limit: int = 160) -> str:
    """A path fit for one line: a run of one segment written once with a count (``a[] (500 times)``)."""
    parts = _SEGMENT.split(path)
    out: list[str] = []
    run = 1
    segments = [p for p in parts if p]
    for i, seg in enumerate(segments):
        if i + 1 < len(segments) and segments[i + 1] == seg:
            run += 1
            continue
        out.append(f"{seg} ({run} times)" if run > 2 else seg * run)
        run = 1
    text = "".join(out) or "the top level"
    return text if len(text) <= limit else text[: limit // 2] + "…" + text[-limit // 2 :]


def path_at_depth(text: str, depth: int) -> str:
    """The JSON path (``a[3].b``) of the first value nested ``depth`` levels deep in ``text``.

    A light scan of the text, for the error message only: it assumes well-formed JSON up to there.
    Paths are written as ``flatten`` writes them, with list positions: ``a[3].b``.
    """
    stack: list[list[Any]] = []  # [kind, index or key, expecting a key]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if stack and stack[-1][0] == "{" and stack[-1][2]:
                try:
                    stack[-1][1] = json.loads(text[i : end + 1])
                except ValueError:
                    stack[-1][1] = text[i + 1 : end]
                stack[-1][2] = False
            i = end + 1
            continue
        if ch in "[{":
            stack.append([ch, 0 if ch == "[" else "", ch == "{"])
            if len(stack) > depth:
                break
        elif ch in "]}":
            if stack:
                stack.pop()
        elif ch == "," and stack:
            if stack[-1][0] == "[":
                stack[-1][1] += 1
            else:
                stack[-1][2] = True
        i += 1
    return "".join(f"[{idx}]" if kind == "[" else f".{idx}" for kind, idx, _ in stack[:-1]).lstrip(".")
