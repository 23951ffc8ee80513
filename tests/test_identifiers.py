"""The e-mail pattern on every supported Python: it compiles, and it accepts exactly what the possessive one did."""

from __future__ import annotations

import random
import re
import sys

import pytest

from discover.identifiers import _EMAIL_RE, normalise_email

# The pattern before Python 3.10 support, with a possessive local part (Python 3.11+ only).
POSSESSIVE = r"[\w.!#$%&'*+/=?^`{|}~-]++@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}\Z"

# Characters that each play a role in the pattern: local-part specials, label characters, separators,
# digits and letters in and out of ASCII, and characters that no part accepts.
LOCAL = "abcXYZ09._+-!#$%&'*/=?^`{|}~é"
LETTERS = "abcxyzéßK"
INNER = LETTERS + "09-_"
NOISE = '@. -_:;,<>()[]\\"\t1é€'


def _candidates(n: int, seed: int) -> list[str]:
    """Mostly e-mail-shaped strings near the pattern's boundaries: label lengths around 63, edge hyphens
    and underscores, digits in the TLD, double or missing at-signs, and a stray character in a third."""
    rnd = random.Random(seed)

    def run(chars: str, lo: int, hi: int) -> str:
        return "".join(rnd.choice(chars) for _ in range(rnd.randint(lo, hi)))

    def label() -> str:
        inner = run(INNER, 0, rnd.choice([3, 8, 61, 63]))
        edges = LETTERS + "09" * 3 + "-_"
        return rnd.choice(edges) + inner + rnd.choice(edges) if inner or rnd.random() < 0.5 else rnd.choice(edges)

    out = []
    for _ in range(n):
        local = run(LOCAL, 0, 12)
        at = rnd.choices(["@", "@@", ""], weights=[18, 1, 1])[0]
        tld = run(LETTERS, 1, rnd.choice([4, 64])) + rnd.choice(["", "", "", "1", "-"])
        text = local + at + ".".join([*(label() for _ in range(rnd.randint(0, 3))), tld])
        if text and rnd.random() < 0.33:
            i = rnd.randrange(len(text))
            text = text[:i] + rnd.choice(NOISE) + text[i + 1 :]
        out.append(text)
    return out


def test_the_pattern_compiles_on_this_python() -> None:
    assert _EMAIL_RE.pattern.count("++") == 0
    assert normalise_email(" Alice.Martin+news@Mail.Example.COM ") == "alice.martin+news@mail.example.com"
    assert normalise_email("alice@localhost") is None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the possessive quantifier needs Python 3.11+")
def test_the_same_strings_match_as_with_the_possessive_local_part() -> None:
    old = re.compile(POSSESSIVE)
    candidates = _candidates(20_000, seed=19)
    accepted = [c for c in candidates if old.match(c)]
    assert len(accepted) > 1_000  # the generator reaches both sides of the boundary
    assert [c for c in candidates if bool(old.match(c)) != bool(_EMAIL_RE.match(c))] == []
    # On a match, both consume the same characters (the whole input, up to \Z).
    assert all(old.match(c).group() == _EMAIL_RE.match(c).group() for c in accepted)  # type: ignore[union-attr]


def test_a_long_local_part_without_an_at_sign_is_rejected() -> None:
    assert normalise_email("a" * 200 + "!" * 40) is None
    assert _EMAIL_RE.match("a." * 50_000 + "example.com") is None
