"""Everything piiport needs from Presidio and tldextract beyond building an ``AnalyzerEngine``, in one place.

Only public names are used: ``SpacyNlpEngine.process_batch`` and ``NlpArtifacts`` (its ``lemmas``
and ``keywords`` attributes, its ``set_keywords`` static method), and ``tldextract.TLDExtract``.
``tests/test_presidio_compat.py`` checks these names and signatures, so that an upgrade that changes
them fails there, loudly; pyproject.toml pins both packages to the range tested.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from discover.chunking import Keywords


def token_artifacts(nlp_engine: Any, texts: Sequence[str], language: str, *, batch_size: int) -> Iterator[Any]:
    """Presidio's ``NlpArtifacts`` of each text, from spaCy's full pipeline (NER included)."""
    for _, artifacts in nlp_engine.process_batch(list(texts), language, batch_size=batch_size):
        yield with_token_lemmas(artifacts, nlp_engine, language)


def tokenized_artifacts(nlp_engine: Any, texts: Sequence[str], language: str, *, batch_size: int) -> list[Any]:
    """``NlpArtifacts`` of each text from the tokenizer alone: pattern recognizers need tokens (for
    context words), not the NER model. Eager, so that no pipe of the full pipeline runs meanwhile."""
    nlp = nlp_engine.nlp[language]
    with nlp.select_pipes(disable=nlp.pipe_names):
        return list(token_artifacts(nlp_engine, texts, language, batch_size=batch_size))


def with_token_lemmas(artifacts: Any, nlp_engine: Any, language: str) -> Any:
    """Lemmas (and the context keywords derived from them) from the lower-cased tokens.

    piiport runs spaCy without its lemmatizer (NER does not need it), so lemmas are empty, and
    Presidio's context words ("phone", "call") match lemmas. Keywords are derived again from these
    lemmas, or no context word ever matches; ``Keywords`` makes each look-up constant time.
    """
    artifacts.lemmas = [lemma or token.lower_ for lemma, token in zip(artifacts.lemmas, artifacts.tokens, strict=True)]
    artifacts.keywords = Keywords(keywords(artifacts.tokens, artifacts.lemmas, nlp_engine, language))
    return artifacts


def keywords(tokens: Any, lemmas: Sequence[str], nlp_engine: Any, language: str) -> list[str]:
    """What ``NlpArtifacts.set_keywords`` derives from these lemmas: lower-cased, without stop words
    and punctuation, split at colons. A lemma that is its token's own lower-cased form is tested on
    the token, whose lexeme is at hand: ``set_keywords`` looks each one up in the vocabulary again,
    which creates a lexeme per new word and cost about a tenth of the analysis of a short text."""
    out: list[str] = []
    for token, lemma in zip(tokens, lemmas, strict=True):
        if lemma == token.lower_:
            skip = token.is_stop or token.is_punct
        else:
            skip = nlp_engine.is_stopword(lemma, language) or nlp_engine.is_punct(lemma, language)
        if skip or lemma in ("-PRON-", "be"):
            continue
        out.extend(lemma.lower().split(":"))
    return out


@functools.cache
def offline_extractor() -> Any:
    """A tldextract extractor on the public-suffix snapshot bundled with tldextract: it never fetches
    the list over the network (tldextract's default extractor does, on first use)."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def has_public_suffix(domain: str) -> bool:
    """Whether ``domain`` ends in a known public suffix, by the bundled list (as Presidio's own e-mail check)."""
    fqdn: str = offline_extractor()(domain).fqdn
    return fqdn != ""
