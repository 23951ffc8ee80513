"""E-mail addresses in free text: the span is the address, nothing around it.

Presidio's own pattern lets the local part take every character RFC 5322 allows (``=``, ``/``,
``?``, ``|``, ``{``…), so in logs and URLs it swallows what comes before the address
(``user=jane@example.com``, ``?to=jane@example.com``) and the normalised value is not the
address. Real addresses almost never hold those characters, and ``key=value`` text is
everywhere, so the local part here is letters, digits and ``. _ + ' -`` only, starting with a
letter or digit. An address whose local part does hold ``=`` or ``/`` is found from the
character after it: a shorter, wrong address is possible there, and accepted as rarer than
the prefix it fixes.

Percent-encoded addresses (``?email=jane%40example.com``, as URL query strings carry them)
are found too; the span covers the encoded text and ``identifiers.normalise_email`` decodes
it before normalising and hashing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

# A domain as identifiers._EMAIL_RE reads it: labels of letters, digits and inner hyphens,
# then an alphabetic TLD, and not followed by more of a word. At most 126 labels (a domain has
# at most 253 characters): unbounded, the `regex` module Presidio uses backtracks out of a long
# run of dotted labels in quadratic time (18 s on "a@b.b.b…", 300 kB).
_DOMAIN = r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,126}[^\W\d_]{2,63}(?![\w-])"
# Not inside a longer local part: no start after a letter, digit, plus, hyphen, or a dot that
# follows one ("see...jane@example.com" starts at "j"). A quote may stand before the address
# ('jane@example.com'). No two dots in a row, none before the "@" (RFC 5322). At most 64
# characters (RFC 5321), which also bounds the work per start.
PLAIN = rf"(?<![\w+-])(?<!\w\.)\w(?:[\w+'-]|\.(?![.@])){{0,63}}@{_DOMAIN}"
# The same with "@" written %40; "+" and "'" may be encoded in the local part too. The address may
# follow another escape ("%3Djane%40example.com", an encoded "="), but not a bare "%".
ENCODED = rf"(?:(?<=%[0-9A-Fa-f]{{2}})|(?<![\w.+%-]))\w(?:[\w+'-]|\.(?![.%])|%2[Bb7]){{0,63}}%40{_DOMAIN}"

_PERCENT_AT = re.compile("%40")


def decode_email(text: str) -> str:
    """``jane%40example.com`` as ``jane@example.com``; text with an ``@`` or no ``%40`` unchanged."""
    if "@" in text or _PERCENT_AT.search(text) is None:
        return text
    return unquote(text)


def email_recognizer(*, supported_language: str) -> Any:
    """Presidio recognizer for the two patterns above, score 0.5 as Presidio's (context words
    such as "email" raise it). A match counts only when its domain ends in a known public
    suffix (tldextract's bundled list), as in Presidio's own check. Presidio is imported here,
    lazily."""
    from presidio_analyzer import Pattern, PatternRecognizer

    from discover.presidio_compat import has_public_suffix

    class EmailSpanRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> Any:
            return has_public_suffix(decode_email(pattern_text).rpartition("@")[2])

    return EmailSpanRecognizer(
        supported_entity="EMAIL_ADDRESS",
        patterns=[Pattern("email", PLAIN, 0.5), Pattern("email-percent-encoded", ENCODED, 0.5)],
        context=["email", "e-mail", "mail", "mailto"],
        supported_language=supported_language,
        name=f"EmailSpanRecognizer_{supported_language}",
    )
