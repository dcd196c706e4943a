""" "a" or "an" before a word built into a message: "an encode worker", "a prefill worker".

Messages name roles and other identifiers through f-strings, where a fixed "a" reads
"a encode worker". The choice follows the word's first sound, which its first letter
gives for Triskel's own words, except a "u" or "eu" spoken "you" ("a unified worker").
"""

from __future__ import annotations

_VOWELS = ("a", "e", "i", "o", "u")
# Beginnings spoken with a "y" sound, which take "a".
_YOU_SOUNDS = ("uni", "use", "usu", "uti", "eu")


def with_article(word: object) -> str:
    """`word` (a str, or e.g. a Role) after "a" or "an"."""
    text = str(word)
    lowered = text.lower()
    if lowered[:1] in _VOWELS and not lowered.startswith(_YOU_SOUNDS):
        return f"an {text}"
    return f"a {text}"
