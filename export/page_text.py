"""The words of a package's index.html, in English and in French.

The French is written as a privacy team writes to a customer: vouvoiement, the GDPR's own
vocabulary (CNIL usage), and French typesetting: a no-break space before « : », a narrow
no-break space before « ; ? ! » and inside guillemets.
"""

from __future__ import annotations

import datetime as dt

LANGUAGES = ("en", "fr")

NBSP = "\u00a0"
NNBSP = "\u202f"

_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_FR_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def colon(lang: str, label: str) -> str:
    """``Base légale :`` with the no-break space French wants; ``Legal basis:`` in English."""
    return f"{label}{NBSP}:" if lang == "fr" else f"{label}:"


def date_time(lang: str, iso: str) -> str:
    """``2026-11-30T14:55:00Z`` → ``30 November 2026, 14:55 UTC`` / ``30 novembre 2026 à 14 h 55 UTC``."""
    try:
        when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    except ValueError:
        return iso
    if lang == "fr":
        day = "1er" if when.day == 1 else str(when.day)
        return f"{day} {_FR_MONTHS[when.month - 1]} {when.year} à {when.hour}{NBSP}h{NBSP}{when.minute:02d} UTC"
    return f"{when.day} {_EN_MONTHS[when.month - 1]} {when.year}, {when:%H:%M} UTC"


def number(lang: str, n: int) -> str:
    """Thousands grouped: ``12,345`` / ``12 345`` (narrow no-break space)."""
    return f"{n:,}".replace(",", NNBSP) if lang == "fr" else f"{n:,}"


TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your personal data",
        "request": "Request",
        "made": "Prepared on",
        "intro_access": (
            "This package answers your request for access to your personal data (GDPR Article 15). It holds the "
            "records about you that we found in our systems, and the information about how we process them."
        ),
        "intro_portability": (
            "This package answers your request for the portability of your personal data (GDPR Article 20). It "
            "holds the data you provided to us, processed on the basis of your consent or of a contract with you, "
            "in formats a computer can read, so that you can pass it on to another service."
        ),
        "how_to_read": (
            "This page summarises the package. The data files next to it hold every record in full; the manifest "
            "(manifest.json) describes them for computer programs."
        ),
        "complete_no": (
            "This answer is not yet complete: some of our systems could not be read. We will send you the rest "
            "as soon as possible."
        ),
        "not_found": "We found no personal data about you in the systems we searched.",
        "redacted": (
            "Other people's personal data has been removed from the free text of your records (Article 15(4)): "
            "it appears as [PERSON], [EMAIL_ADDRESS], [PHONE_NUMBER] or [IP_ADDRESS]."
        ),
        "contents": "Contents",
        "processing": "How we process your personal data",
        "processing_none": "No processing information has been recorded for these sources.",
        "source": "Source",
        "container": "Container",
        "purposes": "Purposes of the processing",
        "legal_basis": "Legal basis",
        "categories": "Categories of personal data",
        "recipients": "Recipients",
        "retention": "Retention period",
        "origin": "Source of the data",
        "automated": "Automated decision-making, including profiling",
        "origin_subject": "you",
        "origin_third_party": "a third party",
        "yes": "yes",
        "no": "no",
        "none": "none",
        "records": "Your records",
        "records_none": "There are no records in this package.",
        "reference": "Context: catalogue entries your records refer to (not personal data)",
        "shown": "The first {shown} of {total} records are shown; every record is in the file {link}.",
        "count": "{n} record(s)",
        "files": "Files in this package",
        "file": "File",
        "what": "Contents",
        "size": "Size (bytes)",
        "checksum": "SHA-256 checksum",
        "file_data": "records from {source} / {container}",
        "file_reference": "catalogue entries from {source} / {container}",
        "file_processing": "information about the processing (machine-readable)",
        "file_manifest": "description of the package for computer programs (lists this page's checksum)",
        "review": "Records under review",
        "review_intro": (
            "These records mention a name or an address that matches yours, but nothing shows that they are about "
            "you. Our staff check them before deciding whether they belong in this answer; they are not included."
        ),
        "field": "Field",
        "kind": "Kind",
        "value": "Value (masked)",
        "reason": "Why",
        "left_out": "What a portability answer does not include",
        "left_out_intro": (
            "The right to data portability covers the data you provided to us and that we process on the basis of "
            "your consent or of a contract. The following is not included for that reason; you can obtain it with "
            "a request for access."
        ),
        "left_reason_legal_basis": "processed on another legal basis ({basis})",
        "left_reason_no_entry": "no legal basis is recorded for it",
        "left_reason_container": "inferred or derived data",
        "left_reason_field": "inferred or derived data",
        "footer": "Generated by piiport {version}. Questions about this answer: reply to the message that sent it.",
        "basis_consent": "your consent (Article 6(1)(a))",
        "basis_contract": "the performance of a contract with you (Article 6(1)(b))",
        "basis_legal_obligation": "a legal obligation (Article 6(1)(c))",
        "basis_vital_interests": "the protection of vital interests (Article 6(1)(d))",
        "basis_public_task": "a task carried out in the public interest (Article 6(1)(e))",
        "basis_legitimate_interests": "our legitimate interests (Article 6(1)(f))",
        "reason_name": "matches your name only",
        "reason_text": "names you in free text, and nothing else ties it to you",
        "reason_ip": "matches an IP address that other people's records also hold",
        "redactions": "Replaced",
    },
    "fr": {
        "title": "Vos données personnelles",
        "request": "Demande",
        "made": "Établi le",
        "intro_access": (
            "Ce dossier répond à votre demande d’accès à vos données personnelles (article 15 du RGPD). Il "
            "contient les informations vous concernant que nous avons trouvées dans nos systèmes, ainsi que les "
            "informations sur la manière dont nous les traitons."
        ),
        "intro_portability": (
            "Ce dossier répond à votre demande de portabilité de vos données personnelles (article 20 du RGPD). "
            "Il contient les données que vous nous avez fournies et que nous traitons sur la base de votre "
            "consentement ou d’un contrat conclu avec vous, dans des formats lisibles par une machine, afin que "
            "vous puissiez les transmettre à un autre service."
        ),
        "how_to_read": (
            "Cette page résume le dossier. Les fichiers de données qui l’accompagnent contiennent l’intégralité "
            "des enregistrements ; le manifeste (manifest.json) les décrit à l’intention des logiciels."
        ),
        "complete_no": (
            "Cette réponse n’est pas encore complète : certains de nos systèmes n’ont pas pu être consultés. "
            "Nous vous adresserons le complément dans les meilleurs délais."
        ),
        "not_found": "Nous n’avons trouvé aucune donnée personnelle vous concernant dans les systèmes consultés.",
        "redacted": (
            "Les données personnelles d’autres personnes ont été retirées des textes libres de vos "
            "enregistrements (article 15, paragraphe 4, du RGPD) : elles apparaissent sous la forme [PERSON], "
            "[EMAIL_ADDRESS], [PHONE_NUMBER] ou [IP_ADDRESS]."
        ),
        "contents": "Sommaire",
        "processing": "Comment nous traitons vos données personnelles",
        "processing_none": "Aucune information sur le traitement n’a été enregistrée pour ces sources.",
        "source": "Source",
        "container": "Table ou fichier",
        "purposes": "Finalités du traitement",
        "legal_basis": "Base légale",
        "categories": "Catégories de données",
        "recipients": "Destinataires",
        "retention": "Durée de conservation",
        "origin": "Source des données",
        "automated": "Prise de décision automatisée, y compris le profilage",
        "origin_subject": "vous-même",
        "origin_third_party": "un tiers",
        "yes": "oui",
        "no": "non",
        "none": "aucun",
        "records": "Vos données",
        "records_none": "Ce dossier ne contient aucun enregistrement.",
        "reference": (
            "Contexte : éléments de catalogue auxquels vos données font référence (pas des données personnelles)"
        ),
        "shown": (
            "Seuls les {shown} premiers enregistrements sur {total} sont affichés ; tous figurent dans le "
            "fichier {link}."
        ),
        "count": "{n} enregistrement(s)",
        "files": "Fichiers du dossier",
        "file": "Fichier",
        "what": "Contenu",
        "size": "Taille (octets)",
        "checksum": "Empreinte SHA-256",
        "file_data": "enregistrements de {source} / {container}",
        "file_reference": "éléments de catalogue de {source} / {container}",
        "file_processing": "informations sur le traitement (format lisible par une machine)",
        "file_manifest": "description du dossier pour les logiciels (indique l’empreinte de cette page)",
        "review": "Enregistrements en cours de vérification",
        "review_intro": (
            "Ces enregistrements mentionnent un nom ou une adresse identique aux vôtres, mais rien n’indique "
            "qu’ils vous concernent. Nos équipes les examinent avant de décider s’ils relèvent de cette réponse ; "
            "ils n’y figurent pas."
        ),
        "field": "Champ",
        "kind": "Type",
        "value": "Valeur (masquée)",
        "reason": "Motif",
        "left_out": "Ce que la réponse au titre de la portabilité ne contient pas",
        "left_out_intro": (
            "Le droit à la portabilité porte sur les données que vous nous avez fournies et que nous traitons sur "
            "la base de votre consentement ou d’un contrat. Les éléments suivants n’y figurent donc pas ; vous "
            "pouvez les obtenir en exerçant votre droit d’accès."
        ),
        "left_reason_legal_basis": "traitement fondé sur une autre base légale ({basis})",
        "left_reason_no_entry": "aucune base légale n’est enregistrée pour ce traitement",
        "left_reason_container": "données déduites ou dérivées",
        "left_reason_field": "données déduites ou dérivées",
        "footer": (
            "Document généré par piiport {version}. Pour toute question sur cette réponse, il vous suffit de "
            "répondre au message qui vous l’a transmise."
        ),
        "basis_consent": "votre consentement (article 6, paragraphe 1, point a)",
        "basis_contract": "l’exécution d’un contrat conclu avec vous (article 6, paragraphe 1, point b)",
        "basis_legal_obligation": "le respect d’une obligation légale (article 6, paragraphe 1, point c)",
        "basis_vital_interests": "la sauvegarde d’intérêts vitaux (article 6, paragraphe 1, point d)",
        "basis_public_task": "l’exécution d’une mission d’intérêt public (article 6, paragraphe 1, point e)",
        "basis_legitimate_interests": "notre intérêt légitime (article 6, paragraphe 1, point f)",
        "reason_name": "correspond uniquement à votre nom",
        "reason_text": "vous nomme dans un texte libre, sans autre élément qui vous y rattache",
        "reason_ip": "correspond à une adresse IP figurant aussi dans les enregistrements d’autres personnes",
        "redactions": "Remplacements",
    },
}


def french_spacing(text: str) -> str:
    """Put the spaces French typesetting wants before « : ; ? ! » and inside guillemets."""
    out = (
        text.replace(" :", f"{NBSP}:").replace(" ;", f"{NNBSP};").replace(" ?", f"{NNBSP}?").replace(" !", f"{NNBSP}!")
    )
    return out.replace("« ", f"«{NNBSP}").replace(" »", f"{NNBSP}»")


def words(lang: str) -> dict[str, str]:
    table = TEXT[lang]
    return {k: french_spacing(v) for k, v in table.items()} if lang == "fr" else table
