"""The Presidio and tldextract surface piiport builds on (discover/presidio_compat.py).

An upgrade that renames or reshapes one of these fails here, with the name, rather than as
missed detections somewhere else; pyproject.toml pins both packages to the range tested.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parent.parent


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_the_presidio_names_piiport_uses_are_there() -> None:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    assert _params(SpacyNlpEngine.process_batch)[:4] == ["self", "texts", "language", "batch_size"]
    assert "nlp_artifacts" in _params(AnalyzerEngine.analyze)
    assert _params(NlpArtifacts.__init__)[:5] == ["self", "entities", "tokens", "tokens_indices", "lemmas"]
    assert isinstance(inspect.getattr_static(NlpArtifacts, "set_keywords"), staticmethod)
    assert _params(NlpArtifacts.set_keywords) == ["nlp_engine", "lemmas", "language"]
    # piiport loads the spaCy model itself (Presidio's load() would download a missing one) into .nlp.
    assert SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm"}]).nlp is None


def test_the_tldextract_names_piiport_uses_are_there() -> None:
    import tldextract

    assert {"suffix_list_urls", "cache_dir"} <= set(_params(tldextract.TLDExtract.__init__))
    from discover.presidio_compat import has_public_suffix, offline_extractor

    assert offline_extractor().suffix_list_urls == ()
    assert has_public_suffix("example.co.uk") and not has_public_suffix("example.invalidtld")


def test_context_words_match_without_the_lemmatizer(detector) -> None:
    from discover.presidio_compat import tokenized_artifacts

    engine = detector.engine("en").nlp_engine
    [artifacts] = tokenized_artifacts(engine, ["Call Phone: 555"], "en", batch_size=8)
    assert artifacts.lemmas == ["call", "phone", ":", "555"] and "phone" in artifacts.keywords
    assert engine.nlp["en"].pipe_names == ["tok2vec", "ner"]  # the NER pipeline is whole again


@pytest.mark.parametrize("package", ["presidio-analyzer", "tldextract"])
def test_the_installed_version_is_in_the_pinned_range(package: str) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    line = re.search(rf'^\s*"({re.escape(package)}[^"]*)"', pyproject, re.MULTILINE)
    assert line is not None, f"{package} is not a dependency in pyproject.toml"
    requirement = Requirement(line.group(1))
    # A pin has an upper bound: the next minor (Presidio) or major (tldextract) may change what we use.
    assert any(spec.operator == "<" for spec in requirement.specifier), requirement
    assert version(package) in requirement.specifier
