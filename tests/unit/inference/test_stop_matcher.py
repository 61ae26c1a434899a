"""Stop strings found across the pieces a reply streams in."""

from __future__ import annotations

from app.core.inference.stop import StopMatcher


def _run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher, shown = StopMatcher(stops), []
    for piece in pieces:
        text, hit = matcher.feed(piece)
        shown.append(text)
        if hit:
            return "".join(shown), True
    shown.append(matcher.finish())
    return "".join(shown), False


def test_a_stop_string_split_across_pieces_is_found_and_not_shown() -> None:
    assert _run(["</end>"], ["Hello wor", "ld</e", "nd> more"]) == ("Hello world", True)


def test_text_that_only_looked_like_a_stop_is_released() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("go ST") == ("go ", False)  # "ST" might begin "STOP": held back
    assert matcher.feed("ay") == ("STay", False)
    assert _run(["STOP"], ["a ST", "O"]) == ("a STO", False), "held text comes out when the reply ends"


def test_the_earliest_of_several_stops_wins() -> None:
    assert _run(["\n\n", "User:"], ["One. User: two\n\nthree"]) == ("One. ", True)


def test_empty_stop_strings_are_ignored() -> None:
    assert _run(["", "x"], ["abc"]) == ("abc", False)
