"""Masked forms of identifiers, the only form that logs and reports may show."""

from __future__ import annotations

from discover.identifiers import EMAIL, IP, PHONE, PHONE_DIGITS


def _mask_word(word: str) -> str:
    return f"{word[:1]}***" if word else "***"


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    labels = domain.split(".")
    tld = labels[-1] if len(labels) > 1 else ""
    return f"{_mask_word(local)}@{_mask_word(labels[0])}" + (f".{tld}" if tld else "")


def mask_phone(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= 4:
        return "***"
    prefix = "+" + "".join(digits[:2]) if value.startswith("+") else "".join(digits[:1])
    return f"{prefix}***{''.join(digits[-2:])}"


def mask_ip(value: str) -> str:
    if ":" in value:
        return value.split(":", 1)[0] + ":***"
    parts = value.split(".")
    return ".".join(parts[:2] + ["*"] * max(0, len(parts) - 2))


def mask_name(value: str) -> str:
    return " ".join(_mask_word(w) for w in value.split()) or "***"


def mask(entity_type: str, value: str) -> str:
    """``j***@e***.com``, ``+33***78``, ``192.168.*.*``, ``J*** S***``."""
    if entity_type == EMAIL:
        return mask_email(value)
    if entity_type in (PHONE, PHONE_DIGITS):
        return mask_phone(value)
    if entity_type == IP:
        return mask_ip(value)
    return mask_name(value)
