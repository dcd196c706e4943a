"""Word lists the lexical guards read: number words, negation markers, language names.

Negation markers map to a few kinds (`not`, `never`, `without`, `except`, `nor`), so
"don't" and "do not", or French "ne ... pas" and a bare "pas", count as the same
negation while "without" and "except" stay apart. Language names map to ISO 639-1
codes, so "in French", "auf Französisch" and "en francés" all name `fr`. Keys are
casefolded (the guards casefold the text before looking words up). Pure data.
"""

from __future__ import annotations

_NUMBERS_ZERO_TO_TWENTY = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
# "zero" and "one" stay words: "one line at a time", "write one" are rarely counts.
NUMBER_WORDS: dict[str, str] = {
    word: str(value) for value, word in enumerate(_NUMBERS_ZERO_TO_TWENTY.split()) if value >= 2
}

# Compound number words, "thirty-five" or "forty two", are read from these.
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_UNITS = "one two three four five six seven eight nine"
TENS_WORDS: dict[str, int] = {word: 10 * index for index, word in enumerate(_TENS.split(), 2)}
UNIT_WORDS: dict[str, int] = {word: index for index, word in enumerate(_UNITS.split(), 1)}

# A unit written right after a number belongs to it ("4 cm" is not "4 m"); each
# symbol stands for its written-out forms, so "4 m" and "4 metres" agree.
_UNITS_BY_SYMBOL: dict[str, str] = {
    "mm": "millimeter millimeters millimetre millimetres",
    "cm": "centimeter centimeters centimetre centimetres",
    "m": "meter meters metre metres",
    "km": "kilometer kilometers kilometre kilometres",
    "in": "inch inches",
    "ft": "foot feet",
    "yd": "yard yards",
    "mi": "mile miles",
    "mg": "milligram milligrams",
    "g": "gram grams",
    "kg": "kilogram kilograms kilo kilos",
    "t": "ton tons tonne tonnes",
    "lb": "lbs pound pounds",
    "oz": "ounce ounces",
    "ml": "milliliter milliliters millilitre millilitres",
    "l": "liter liters litre litres",
    "gal": "gallon gallons",
    "ms": "millisecond milliseconds",
    "s": "sec secs second seconds",
    "min": "mins minute minutes",
    "h": "hr hrs hour hours",
    "kb": "kilobyte kilobytes",
    "mb": "megabyte megabytes",
    "gb": "gigabyte gigabytes",
    "tb": "terabyte terabytes",
    "°c": "celsius",
    "°f": "fahrenheit",
    "k": "kelvin",
}
UNIT_SYMBOLS: dict[str, str] = {
    form: symbol
    for symbol, forms in _UNITS_BY_SYMBOL.items()
    for form in (symbol, *forms.split())
    if form != "in"  # "put 3 in the list": a bare "in" is the preposition
}

_NEGATIONS_BY_KIND: dict[str, str] = {
    # English (n't and cannot are folded to `not` by the guard before lookup)
    "not": "not no none nothing nobody "
    # French (n' is folded to `ne`)
    "ne pas aucun aucune rien "
    # German
    "nicht kein keine keinen keinem keiner keines nichts "
    # Spanish
    "ninguno ninguna nada nadie "
    # Italian
    "non nessuno nessuna niente nulla "
    # Portuguese
    "não nao nenhum nenhuma",
    "never": "never jamais nie niemals nunca mai",
    "without": "without sans ohne sin senza sem",
    "except": "except excluding sauf außer ausser excepto salvo tranne eccetto exceto",
    "nor": "nor neither ni weder né nem",
}

NEGATION_WORDS: dict[str, str] = {
    word.casefold(): kind for kind, words in _NEGATIONS_BY_KIND.items() for word in words.split()
}

# Not negations, but they turn an answer around the same way when added to one side
# only ("in alphabetical order" / "in reverse alphabetical order"): the negation guard
# counts them as a kind of their own. They stay content words too.
REVERSAL_WORDS = frozenset(
    ["reverse", "reversed", "reversal", "inverse", "inverted", "opposite", "backwards", "backward"]
)

# Scripts without spaces between words: markers found as substrings.
# 不 / 没 (Chinese), ない (Japanese), 않 (Korean).
NEGATION_SUBSTRINGS: dict[str, str] = {"不": "not", "没": "not", "ない": "not", "않": "not"}

_LANGUAGE_NAMES_BY_CODE: dict[str, str] = {
    "en": "english anglais englisch inglés ingles inglese inglês",
    "fr": "french français francais französisch franzosisch francés frances francese francês",
    "de": "german deutsch allemand alemán aleman tedesco alemão",
    "es": "spanish español espanol espagnol spanisch spagnolo espanhol castellano",
    "it": "italian italiano italien italienisch",
    "pt": "portuguese português portugues portugais portugiesisch portoghese portugués",
    "zh": "chinese mandarin chinois chinesisch chino cinese chinês",
    "ja": "japanese japonais japanisch japonés giapponese japonês",
    "ko": "korean coréen koreanisch coreano",
    "ru": "russian russe russisch ruso russo русский",
    "ar": "arabic arabe arabisch árabe arabo",
    "nl": "dutch néerlandais niederländisch nederlands holandés olandese",
    "pl": "polish polonais polnisch polaco polacco polski",
    "tr": "turkish turc türkisch turco türkçe",
    "sv": "swedish suédois schwedisch sueco svedese svenska",
    "el": "greek grec griechisch griego greco",
    "hi": "hindi",
    "vi": "vietnamese vietnamien vietnamesisch vietnamita",
    "uk": "ukrainian ukrainien ukrainisch ucraniano ucraino",
}

LANGUAGE_NAME_WORDS: dict[str, str] = {
    word.casefold(): code
    for code, words in _LANGUAGE_NAMES_BY_CODE.items()
    for word in words.split()
}

# Names written in scripts without spaces: found as substrings.
LANGUAGE_NAME_SUBSTRINGS: dict[str, str] = {
    "中文": "zh",
    "汉语": "zh",
    "漢語": "zh",
    "普通话": "zh",
    "英语": "en",
    "英語": "en",
    "日语": "ja",
    "日本語": "ja",
    "法语": "fr",
    "德语": "de",
    "한국어": "ko",
    "영어": "en",
}
