"""Password hashing (argon2id) and the rules for a new password: judged by strength (zxcvbn), not by list."""
from __future__ import annotations

import re
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable: moderate protection from an offline attack"
SCORED_LENGTH = 100  # zxcvbn's time grows with the length; past 100 characters the score is 4 anyway

# zxcvbn's warnings, in the parents' language.
WARNINGS_FR = {
    "top-10": "Ce mot de passe fait partie des plus utilisés au monde.",
    "top-100": "Ce mot de passe fait partie des plus utilisés au monde.",
    "very common": "Ce mot de passe est très courant.",
    "similar to a commonly used": "Ce mot de passe ressemble à un mot de passe très courant.",
    "Repeats like": "Les répétitions (« aaa », « abcabc ») se devinent facilement.",
    "Sequences like": "Les suites comme « abc » ou « 6543 » se devinent facilement.",
    "Recent years": "Les années se devinent facilement.",
    "Dates are": "Les dates se devinent facilement.",
    "rows of keys": "Les suites de touches du clavier (« azerty ») se devinent facilement.",
    "keyboard patterns": "Les suites de touches du clavier (« azerty ») se devinent facilement.",
    "Names and surnames": "Un nom ou un prénom se devine facilement.",
    "Common names": "Un nom ou un prénom se devine facilement.",
    "A word by itself": "Un mot seul se devine facilement.",
}
ADVICE = ("Choisissez plutôt une phrase d'au moins quatre mots sans lien entre eux, facile à retenir pour vous "
          "(les espaces sont permis).")


def normalize(password: str) -> str:
    """NFKC: the same password typed on a phone or a PC (composed accents, full-width signs) is one password."""
    return unicodedata.normalize("NFKC", password)


def make_hasher(time_cost: int, memory_cost: int) -> PasswordHasher:
    """An argon2id hasher with the configured cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)


def hash_password(hasher: PasswordHasher, password: str) -> str:
    return hasher.hash(normalize(password))


def verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    """True when ``password`` matches the stored hash (hashes made before NFKC are still recognised)."""
    for candidate in dict.fromkeys((normalize(password), password)):
        try:
            if hasher.verify(password_hash, candidate):
                return True
        except (VerificationError, InvalidHashError):
            continue
    return False


def personal_words(*texts: str) -> list[str]:
    """What an attacker knows of the account: the login and its parts, names, the town."""
    words = []
    for text in texts:
        if text:
            words.append(text.lower())
            words.extend(part for part in re.split(r"[\s@._+\-']+", text.lower()) if len(part) >= 3)
    return words


def new_password_problem(password: str, email: str = "", words: tuple[str, ...] | list[str] = (),
                         hasher: PasswordHasher | None = None, current_hash: str | None = None) -> str | None:
    """Why a chosen password is refused, in French, or None when it is strong enough.

    ``words``: names and places of the account (``personal_words``), which zxcvbn counts as guessable;
    ``current_hash``: the password in use, which cannot be chosen again.
    """
    password = normalize(password)
    if len(password) < MIN_LENGTH:
        return f"Le mot de passe doit contenir au moins {MIN_LENGTH} caractères. {ADVICE}"
    if len(password) > MAX_LENGTH:
        return f"Le mot de passe doit contenir au plus {MAX_LENGTH} caractères."
    inputs = personal_words(email, *words)
    if email and password.lower().startswith(email.lower()):
        return f"Le mot de passe ne doit pas reprendre votre adresse mail. {ADVICE}"
    if hasher and current_hash and verify(hasher, current_hash, password):
        return "C'est votre mot de passe actuel : choisissez-en un nouveau."
    result = zxcvbn(password[:SCORED_LENGTH], user_inputs=inputs)
    if result["score"] >= MIN_SCORE:
        return None
    lowered = password.lower()
    personal = any(len(word) >= 4 and word in lowered for word in inputs)
    warning = result["feedback"]["warning"] or ""
    why = next((french for key, french in WARNINGS_FR.items() if key in warning), "")
    if personal:
        why = "Il reprend votre identifiant, votre nom ou celui de la commune, faciles à deviner."
    return " ".join(part for part in ("Ce mot de passe est trop facile à deviner.", why, ADVICE) if part)
