"""Deterministic, ASCII, Windows-valid file names for package members."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX = 120


def windows_reserved(name: str) -> bool:
    """Whether Windows refuses ``name`` as a file name (``CON``, ``nul.txt``, ``Com1.zip``)."""
    return name.split(".", 1)[0].upper() in _RESERVED


def safe_component(name: str) -> str:
    """``Clients/2026 été.csv`` → ``Clients__2026_ete.csv``; never empty, reserved, or dot-ended."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = ascii_name.replace("/", "__").replace("\\", "__")
    cleaned = _UNSAFE.sub("_", ascii_name).strip(" ._") or "unnamed"
    if windows_reserved(cleaned):
        cleaned = "_" + cleaned
    if len(cleaned) > _MAX or cleaned != name:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: _MAX - 9]}-{digest}" if len(cleaned) > _MAX else cleaned
    return cleaned


def unique_names(names: list[tuple[str, str]], ext: str) -> dict[tuple[str, str], str]:
    """Map (source, container) pairs to ``data/<source>/<container>.<ext>``, unique even when cleaning collides."""
    out: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for source, container in sorted(names):
        base = f"data/{safe_component(source)}/{safe_component(container)}"
        path = f"{base}.{ext}"
        if path.lower() in taken:  # Windows file names are case-insensitive
            path = f"{base}-{hashlib.sha1(f'{source}/{container}'.encode()).hexdigest()[:8]}.{ext}"
        taken.add(path.lower())
        out[(source, container)] = path
    return out
