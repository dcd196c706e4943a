"""A prompt's content words: what it asks about, without the words that only frame it.

"How do I reverse a list in Python?" and "what's the way to reverse a python list"
differ in most of their words but in none of their content words: {list, python,
reverse}. The cache compares prompts by their content words, two ways:

    by meaning   the embedding of the content words alone: framing words ("how do I",
                 "could you please", "tell me") dominate a short prompt's averaged
                 word vectors and make paraphrases look apart
    by change    `substitution`: when one prompt has a word where the other has its
                 opposite or a sibling ("largest" vs "smallest", "list" vs "dict",
                 "ascending" vs "descending": contrasts.py), that word is the point
                 of the change — a near miss, not a paraphrase, however close the
                 embeddings

Numbers and negations are left out: their own guards compare them exactly. Words
match across a typo (one edit in a word of five or more letters) and across common
English endings (-s, -es, -ed, -ing, -ly). Pure.
"""

from __future__ import annotations

import re
import unicodedata

from triskel.router.semantic_cache.contrasts import ContrastLexicon
from triskel.router.semantic_cache.lexicon import NEGATION_WORDS, NUMBER_WORDS, TENS_WORDS

_WORD = re.compile(r"\w+")
# English function words and the words that frame a request rather than say what it
# is about ("please tell me how I can..."); a few French, German, Spanish, Italian and
# Portuguese function words too. Negations are not here: the negation guard reads them.
_FRAMING_WORDS = """
    a an the this that these those some any each every of in on at to for from by with
    about as into onto over under than then so and or but if is are was were be been
    being am do does did done doing have has had having will would shall should can
    could may might must i me my mine we us our you your yours he him his she her it
    its they them their what which who whom whose when where why how whats hows
    there here please pls kindly thanks thank hi hello hey tell show give explain
    describe help want wanted need needs like know let lets way ways get got make
    just really very also still even ok okay quick quickly simple simply short briefly
    possible example examples e g ie eg s t ll ve re d m
    fact facts info information detail details overview summary
    write writing come up idea ideas tip tips some many much number numbers
    between vs versus above below following
    don doesn didn isn aren wasn weren won wouldn couldn shouldn haven hasn hadn
    le la les un une des du de et ou est sont dans pour par avec sur ce cette ces je tu
    il elle nous vous ils comment quel quelle quels quelles qu que qui
    der die das ein eine einen dem den des und oder ist sind im in zu mit für auf wie
    was ich du er sie wir ihr bitte
    el los las unos unas del y o es son en para por con como qué que yo tú
    il lo gli uno una dei delle e o è sono per con come che io
    o os as um uma do da dos das e ou é são em para por com como que eu
"""
_FRAMING = frozenset(_FRAMING_WORDS.split())
_ENDINGS = ("ing", "ed", "es", "ly", "s")
_COMPARED_ELSEWHERE = frozenset(NUMBER_WORDS) | frozenset(TENS_WORDS) | frozenset(NEGATION_WORDS)


def content_words(text: str) -> tuple[str, ...]:
    """The text's content words in order: casefolded, framing words left out, each
    reduced to a rough stem."""
    folded = unicodedata.normalize("NFC", text).casefold().replace("’", "'")
    return tuple(_stem(word) for word in _WORD.findall(folded) if _is_content(word))


# Words that give a request a direction: "convert a list to a tuple" is not "convert a
# tuple to a list", though their content words are the same.
_DIRECTION_MARKERS = frozenset({"to", "into", "from", "than", "vs", "versus", "over"})


def direction(text: str) -> tuple[str, str] | None:
    """The content words on each side of the first direction word that has one on
    both sides ("list", "tuple" in "convert a list to a tuple"), else None."""
    folded = unicodedata.normalize("NFC", text).casefold()
    words = _WORD.findall(folded)
    for index, word in enumerate(words):
        if word not in _DIRECTION_MARKERS:
            continue
        before = [w for w in words[:index] if _is_content(w)]
        after = [w for w in words[index + 1 :] if _is_content(w)]
        if before and after:
            return _stem(before[-1]), _stem(after[0])
    return None


def _is_content(word: str) -> bool:
    return not (word in _FRAMING or len(word) == 1 or word in _COMPARED_ELSEWHERE or word.isdigit())


def content_text(text: str) -> str:
    """What the cache embeds: the content words, in order (the text itself when it has
    none, so a prompt of framing words still has a vector)."""
    words = content_words(text)
    return " ".join(words) if words else text


def substitution(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...] | None:
    """The contrasting words when one prompt puts a word where the other puts its
    opposite or a sibling ("largest" / "smallest", "list" / "dict", "sum" / "product":
    contrasts.py), else None.

    Only words without a counterpart on the other side count (across typos and
    endings). A swap the lexicon does not know is taken as rewording ("remove" /
    "delete"): on the tuning pairs, treating every swap of a few words as a near miss
    (this guard's first design) turned away 50 paraphrases to catch near misses the
    lexicon catches too. Words added on one side only ("write", "ideas", "tips")
    rarely change the answer where numbers, negations and languages do not, and
    those have their own guards.
    """
    only_a = [w for w in dict.fromkeys(a) if not _matched(w, b)]
    only_b = [w for w in dict.fromkeys(b) if not _matched(w, a)]
    pairs = [(x, y) for x in only_a for y in only_b if _CONTRASTS.contrast(x, y)]
    if not pairs:
        return None
    return tuple(dict.fromkeys(word for pair in pairs for word in pair))


def _matched(word: str, others: tuple[str, ...]) -> bool:
    return any(
        word == other or _same_stem(word, other) or _is_typo(word, other) for other in others
    )


def _same_stem(a: str, b: str) -> bool:
    """A rough stem and its word ("rever" from "revers", and "reverse")."""
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return len(short) >= 4 and len(long) - len(short) <= 2 and long.startswith(short)


def _is_typo(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours, in words of 5+."""
    if min(len(a), len(b)) < 5 or abs(len(a) - len(b)) > 1 or a.isdigit() or b.isdigit():
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _stem(word: str) -> str:
    for ending in _ENDINGS:
        if len(word) > len(ending) + 3 and word.endswith(ending):
            return word[: -len(ending)]
    return word


# Built once: its keys are stemmed the way content words are.
_CONTRASTS = ContrastLexicon(_stem)
