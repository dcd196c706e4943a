"""Stop sequences over streamed text."""

from __future__ import annotations

import pytest

from triskel.common.stop_sequences import StopMatcher


@pytest.mark.parametrize(
    ("stops", "pieces", "shown", "stopped"),
    [
        # No stop strings: everything is shown at once, nothing held.
        ((), ["a", "b"], ["a", "b"], False),
        # A stop inside one piece cuts it there; the stop string is not shown.
        (("END",), ["abcENDxyz"], ["abc"], True),
        # A stop split over pieces: "a\n" holds the "\n" until "\nb" shows it is a stop.
        (("\n\n",), ["a\n", "\nb"], ["a", ""], True),
        # A held tail that did not become a stop is shown with the next piece.
        (("\n\n",), ["a\n", "b"], ["a", "\nb"], False),
        # The earliest of several stops wins.
        (("yz", "bc"), ["abcxyz"], ["a"], True),
        # After a stop, nothing more is shown.
        (("b",), ["ab", "cd"], ["a", ""], True),
    ],
)
def test_pieces_show_the_text_before_the_first_stop(
    stops: tuple[str, ...], pieces: list[str], shown: list[str], stopped: bool
) -> None:
    matcher = StopMatcher(stops)
    assert [matcher.feed(piece) for piece in pieces] == shown
    assert matcher.is_stopped is stopped


def test_flush_gives_back_the_held_tail() -> None:
    matcher = StopMatcher(["xyz"])
    assert matcher.feed("abcx") == "abc"  # only "x" could begin "xyz"
    assert matcher.flush() == "x"
