"""The real Presidio + spaCy detector, with piiport's settings and fixes."""

from __future__ import annotations

import pytest

from connectors.errors import ConfigError
from discover.detector import Detector, ner_view
from discover.errors import DetectionError
from discover.settings import DetectionSettings


def _found(detector: Detector, text: str, language: str | None = None) -> set[tuple[str, str]]:
    (entities,) = detector.analyze([text], language=language)
    return {(e.type, text[e.start : e.end]) for e in entities}


def test_each_entity_type_is_found(detector: Detector) -> None:
    text = "Jane Doe (jane.doe@example.org) called from +44 20 7946 0958, logged in from 81.12.200.7."
    assert _found(detector, text) == {
        ("PERSON", "Jane Doe"),
        ("EMAIL_ADDRESS", "jane.doe@example.org"),
        ("PHONE_NUMBER", "+44 20 7946 0958"),
        ("IP_ADDRESS", "81.12.200.7"),
    }


def test_all_caps_names_are_found_with_their_original_offsets(detector: Detector) -> None:
    text = "Refund approved for JOHN SMITH today."
    assert ("PERSON", "JOHN SMITH") in _found(detector, text)
    assert ner_view("CALL JOHN SMITH NOW") == "Call John Smith Now"
    assert len(ner_view("STRASSE GROSS")) == len("STRASSE GROSS")


def test_no_person_made_of_digits_and_no_url_inside_an_email(detector: Detector) -> None:
    det = Detector(DetectionSettings(entities=("PERSON", "EMAIL_ADDRESS")), engine=detector.engine())
    found = _found(det, "Ticket 4455-2231 from bob.stone@example.com")
    assert found == {("EMAIL_ADDRESS", "bob.stone@example.com")}


def test_only_configured_entities_are_returned(detector: Detector) -> None:
    det = Detector(DetectionSettings(entities=("EMAIL_ADDRESS",)), engine=detector.engine())
    assert _found(det, "Jane Doe, jane@example.org, 81.12.200.7") == {("EMAIL_ADDRESS", "jane@example.org")}


def test_score_threshold_is_applied(detector: Detector) -> None:
    strict = Detector(DetectionSettings(score_threshold=0.9), engine=detector.engine())
    # IPs score 0.6 and context-less phones 0.4 in Presidio; only the e-mail (1.0) passes 0.9.
    assert _found(strict, "x 81.12.200.7 y jane@example.org") == {("EMAIL_ADDRESS", "jane@example.org")}


def test_uk_is_not_a_region_code() -> None:
    with pytest.raises(ConfigError) as err:
        DetectionSettings(phone_regions=("FR", "UK"))
    assert err.value.message == (
        "phone region 'UK' is not an ISO 3166 region code (the United Kingdom is GB); use codes such as FR, GB, DE, US"
    )


def test_a_missing_model_is_an_error_not_a_download() -> None:
    det = Detector(DetectionSettings(models={"en": "en_core_web_nonexistent"}))
    with pytest.raises(DetectionError) as err:
        det.analyze(["hello"])
    assert "spaCy model 'en_core_web_nonexistent' for language 'en' is not installed" in err.value.message


def test_tldextract_uses_its_bundled_suffix_list(detector: Detector) -> None:
    import tldextract.tldextract as tld

    from discover.presidio_compat import offline_extractor

    default_urls = tld.TLD_EXTRACTOR.suffix_list_urls
    text = "mail me at someone@example.co.uk or at x@example.invalidtld"
    found = detector.analyze([text])[0]
    assert [(e.type, text[e.start : e.end]) for e in found] == [("EMAIL_ADDRESS", "someone@example.co.uk")]
    # piiport's own extractor never fetches the list; tldextract's process-wide one is left alone.
    assert offline_extractor().suffix_list_urls == () and offline_extractor()("example.co.uk").suffix == "co.uk"
    assert tld.TLD_EXTRACTOR.suffix_list_urls == default_urls != ()


def test_french_text_and_phone_formats(detector: Detector) -> None:
    text = "Marie Dupont a appelé du 06 12 34 56 78, puis du +33 6 12 34 56 79 et du 0033 6 12 34 56 80."
    found = _found(detector, text, language="fr")
    assert ("PERSON", "Marie Dupont") in found
    assert {v for t, v in found if t == "PHONE_NUMBER"} == {"06 12 34 56 78", "+33 6 12 34 56 79", "0033 6 12 34 56 80"}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # spaCy's small model reads these names as organisations or misses them.
        ("Nikolaj spent a year at Datamarket as an intern.", "Nikolaj"),
        ("Darren is a very sympathetic person.", "Darren"),
        ("Sandra lives on Hansinegata 120.", "Sandra"),
        # All lower case: NER never sees it without the gazetteer.
        ("please call lena andersson tomorrow", "lena andersson"),
    ],
)
def test_gazetteer_finds_names_the_model_misses(detector: Detector, text: str, name: str) -> None:
    assert ("PERSON", name) in _found(detector, text)


@pytest.mark.parametrize(
    "text",
    [
        "The parcel went to 654 Rua Ana Caciola 1159 yesterday.",  # a street named after a person
        "They played at Berg Hills Street.",
        "France was super fun to visit.",  # a given name, but spaCy knows it is a place
        "Don't forget the meeting on Sunday.",
    ],
)
def test_gazetteer_leaves_places_and_common_words_alone(detector: Detector, text: str) -> None:
    assert not {t for t, _ in _found(detector, text) if t == "PERSON"}


def test_gazetteer_names_respect_the_score_threshold(detector: Detector) -> None:
    strict = Detector(DetectionSettings(score_threshold=0.55), engine=detector.engine())
    assert _found(strict, "Darren is a very sympathetic person.") == set()


def test_a_name_mentioned_again_is_found_again(detector: Detector) -> None:
    # The model finds the full name but not the surname alone.
    text = "Ottokar Brenninkmeijer wrote it. Later, Brenninkmeijer signed."
    assert _found(detector, text) == {("PERSON", "Ottokar Brenninkmeijer"), ("PERSON", "Brenninkmeijer")}


# Catalogue prose of our own, in the title case such catalogues use: role nouns are not people.
CATALOGUE_PROSE = [
    "A Brooding Fable About A Butler Who Must Outwit the Hunter Near The Salt Marshes",
    "An Epic Romance of a Composer And a Mad Scientist who must Rescue a Teacher in The Glass Canyon",
    "Gritty Western: A Shepherd and Her Baker Confront An Accountant Across A Sunken City",
    "The Falconer and the Tailor, a Reckless Romance Set in A Frozen Lighthouse",
    "A Giddy Musical About A Ballerina Who Must Tame the Dragon Near The Copper Mines",
    "Our Senior Composer Meets A Mad Scientist",
]


@pytest.mark.parametrize("text", CATALOGUE_PROSE)
def test_title_case_prose_and_noun_phrases_are_not_names(detector: Detector, text: str) -> None:
    assert {t for t, _ in _found(detector, text)} == set()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # Names in title case still count: a given name with a family name, or a word no dictionary has.
        ("Directed by Karen Brown, With Alice Martin as the Butler", {"Karen Brown", "Alice Martin"}),
        ("Written by Olga Kowalski, With Music by Sven Novak and The Composer", {"Olga Kowalski", "Sven Novak"}),
        ("A Tender Drama About Mr. Yefimov And The Baker", {"Yefimov"}),
        # After an article when the name modifies the next noun, or after an honorific.
        ("Have you been to a Harvey Leach concert before?", {"Harvey Leach"}),
        ("Unlike the Petersson novel, it's not long.", {"Petersson"}),
        ("For my take on Mrs. Baker, see the review.", {"Baker"}),
        ("I spoke to the CEO John Smith.", {"John Smith"}),
        # Ordinary prose: capitalisation still speaks.
        ("The hunter called Jane Butler about the refund.", {"Jane Butler"}),
    ],
)
def test_names_in_title_case_and_after_articles_are_still_found(detector: Detector, text: str, names: set[str]) -> None:
    assert {v for t, v in _found(detector, text) if t == "PERSON"} == names


def test_presidio_context_words_raise_the_score(detector: Detector) -> None:
    # The context step matches words next to a finding ("ip address") against keywords that
    # Presidio derives from lemmas; this model has no lemmatizer, so the detector supplies them.
    with_context, without = detector.analyze(["the ip address is 81.12.200.7 today", "the value 81.12.200.7 today"])
    assert [(e.type, e.score) for e in with_context] == [("IP_ADDRESS", 0.95)]
    assert [(e.type, e.score) for e in without] == [("IP_ADDRESS", 0.6)]


@pytest.mark.parametrize(
    "text",
    ["Alma Perez alma@x.example", "Alma Perez \x00\x00 alma@x.example"],
)
def test_a_name_stops_before_an_address_or_a_control_character(detector: Detector, text: str) -> None:
    assert [(e.type, text[e.start : e.end]) for e in detector.analyze([text])[0] if e.type == "PERSON"] == [
        ("PERSON", "Alma Perez")
    ]


def test_a_texts_entities_do_not_depend_on_the_batch_it_is_analysed_in(detector: Detector) -> None:
    """Incremental rescans re-read a free-text table's changed notes in batches of their own
    (``discover.buckets``): each text must get the entities it gets in the full read's batch."""
    import random

    rng = random.Random(3)
    first = ["Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gina", "Hugo", "Marie", "Jean"]
    last = ["Martin", "Dubois", "Nguyen", "Smith", "Lefèvre", "Ivanov", "Moreau", "Garcia"]
    shapes = [
        "Called {n} about the invoice, reach at {e}",
        "Spoke with {n} and {m} from accounting; call back on +33 6 12 {d} {d} {d}",
        "{n} ({e}) changed the delivery address. Login from 81.2.{d}.7 today.",
        "Parcel returned to the depot, no answer at the door.",
        "Meeting with {n} on Monday. {m} will bring the contract; {n} signs it.",
        "ANNA {L} ASKED FOR A REFUND",
    ]
    texts = []
    for _ in range(120):
        a, b = f"{rng.choice(first)} {rng.choice(last)}", f"{rng.choice(first)} {rng.choice(last)}"
        texts.append(
            rng.choice(shapes).format(
                n=a, m=b, e=f"{a.split()[0].lower()}@example.com", d=rng.randint(10, 99), L=rng.choice(last).upper()
            )
        )
    together = detector.analyze(texts)
    assert sum(any(e.type == "PERSON" for e in found) for found in together) > 60
    order = list(range(len(texts)))
    rng.shuffle(order)
    apart: dict[int, object] = {}
    at = 0
    while at < len(order):
        size = rng.choice([1, 2, 7, 33])
        chunk = order[at : at + size]
        apart.update(zip(chunk, detector.analyze([texts[i] for i in chunk]), strict=True))
        at += size
    assert [apart[i] for i in range(len(texts))] == together
