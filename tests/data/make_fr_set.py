"""Writes fr_labelled.json: a small labelled French set (our own sentences), spans computed from the values."""

import json
from pathlib import Path

SENTENCES = [
    ("Bonjour, je suis {P} et mon numéro est le {T}.", ["Camille Laurent", "06 12 34 56 78"]),
    ("Merci de rappeler {P} au {T} avant vendredi.", ["Jean-Pierre Moreau", "+33 6 98 76 54 32"]),
    ("Le client {P} a écrit depuis l'adresse {E}.", ["Sophie Bernard", "sophie.bernard@exemple.fr"]),
    ("Connexion suspecte depuis {I} sur le compte de {P}.", ["192.168.40.12", "Luc Petit"]),
    (
        "Vous pouvez joindre {P} au {T} ou par courriel : {E}.",
        ["Élodie Girard", "0033 6 11 22 33 44", "elodie.girard@exemple.org"],
    ),
    ("Le colis de {P} est arrivé abîmé, elle demande un remboursement.", ["Nathalie Roux"]),
    ("Appel reçu du {T} concernant la facture 2026-0412.", ["01 42 68 53 00"]),
    ("{P} et {P} ont signé le contrat hier à Lyon.", ["Thomas Fournier", "Julie Mercier"]),
    ("Adresse IP enregistrée : {I}, navigateur Firefox.", ["81.250.12.7"]),
    ("Pour toute question, contactez {E} ou appelez le {T}.", ["support@boutique-exemple.fr", "09 70 80 90 10"]),
    ("La commande 458921 a été expédiée le 12 mars.", []),
    ("Madame {P} souhaite changer son numéro pour le {T}.", ["Isabelle Lefèvre", "07 55 44 33 22"]),
    ("Rendez-vous confirmé avec {P}, son portable : {T}.", ["Marc Dupuis", "+33 7 81 92 03 14"]),
    ("Le technicien {P} interviendra mardi matin.", ["Antoine Lambert"]),
    ("Aucune donnée personnelle dans ce message, seulement un rappel de maintenance.", []),
]
KINDS = {"P": "PERSON", "T": "PHONE_NUMBER", "E": "EMAIL_ADDRESS", "I": "IP_ADDRESS"}


def build() -> list[dict]:
    out = []
    for template, values in SENTENCES:
        text, spans, rest, vals = "", [], template, list(values)
        while "{" in rest:
            before, _, after = rest.partition("{")
            kind, _, rest = after.partition("}")
            text += before
            value = vals.pop(0)
            spans.append(
                {
                    "entity_type": KINDS[kind],
                    "entity_value": value,
                    "start_position": len(text),
                    "end_position": len(text) + len(value),
                }
            )
            text += value
        out.append({"full_text": text + rest, "spans": spans})
    return out


if __name__ == "__main__":
    Path(__file__).with_name("fr_labelled.json").write_text(
        json.dumps(build(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
