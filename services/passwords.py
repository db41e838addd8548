"""Password hashing (argon2id) and the rules for a new password."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_LENGTH = 128

# Common passwords: zxcvbn's list of the 30,000 most used, plus French keyboard habits.
_COMMON = frozenset(FREQUENCY_LISTS["passwords"]) | {
    "azertyuiop", "azertyuiop12", "azertyuiop123", "motdepasse", "motdepasse1", "motdepasse12",
    "motdepasse123", "motdepasse1234", "jetaime123456", "soleil123456", "bonjour123456",
    "marseille1313", "doudou123456", "123456789azerty", "azerty123456", "azerty1234567",
    "123456789012", "1234567890123", "000000000000", "111111111111", "aaaaaaaaaaaa",
}


def make_hasher(time_cost: int, memory_cost: int) -> PasswordHasher:
    """An argon2id hasher with the configured cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)


def verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    """True when ``password`` matches the stored hash."""
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password_problem(password: str, email: str = "") -> str | None:
    """Why a chosen password is refused, in French, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Le mot de passe doit contenir au moins {MIN_LENGTH} caractères."
    if len(password) > MAX_LENGTH:
        return f"Le mot de passe doit contenir au plus {MAX_LENGTH} caractères."
    lowered = password.lower()
    if lowered in _COMMON or len(set(lowered)) <= 2:
        return "Ce mot de passe est trop courant : choisissez-en un autre, par exemple une phrase."
    if email and lowered == email.lower():
        return "Le mot de passe ne doit pas être votre adresse mail."
    return None
