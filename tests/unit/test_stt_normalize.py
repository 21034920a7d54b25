"""Transcript normalisation and WER: fair comparison of engine output with references."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.transcripts import normalize_text, number_to_words, wer, word_errors, words_to_numbers


@pytest.mark.parametrize(
    "a, b",
    [
        ("In 1961 the president spoke.", "in nineteen sixty one the president spoke"),
        ("Go forward 10 meters.", "go forward ten meters"),
        ("1, 2, 3.", "one two three"),
        ("One, two, three!", "one two three"),
        ("It costs $250.", "it costs two hundred and fifty dollars"),
        ("It costs $1.", "it costs one dollar"),
        ("100% sure", "a hundred percent sure"),
        ("twenty-first of May", "21st of may"),
        ("Mr. John Dashwood", "mister john dashwood"),
        ("Dr. Smith & co", "doctor smith and co"),
        ("We'll meet at 3.30 tomorrow", "we'll meet at three thirty tomorrow"),
        ("It's 10:30 already", "its ten thirty already"),
        ("at 7.45 p.m.", "at seven forty five pm"),
        ("In 2024, 3,000 people came", "in twenty twenty four three thousand people came"),
        ("in 1905", "in nineteen oh five"),
        ("He was not an ill-disposed young man", "he was not an ill disposed young man"),
        ("My favourite colour is grey", "my favorite color is gray"),
        ("He travelled to the centre", "he traveled to the center"),
        ("Um, I think, uh, yes", "i think yes"),
        ("pi is 3.14", "pi is three point one four"),
        ("“Don’t” — she said…", "dont she said"),
        ("CAPITALS And lower", "capitals and lower"),
        ("7 million people", "seven million people"),
    ],
)
def test_equivalent_forms_normalise_equal(a, b):
    assert normalize_text(a) == normalize_text(b)
    assert wer(a, b) == 0.0
    assert wer(b, a) == 0.0


@pytest.mark.parametrize(
    "a, b",
    [
        ("one two three", "123"),  # a digit sequence is not one number
        ("nineteen sixty one", "1960 1"),
        ("go forward ten meters", "go forward two meters"),
        ("ill disposed", "old sposed"),
    ],
)
def test_different_content_stays_different(a, b):
    assert normalize_text(a) != normalize_text(b)
    assert wer(a, b) > 0


def test_words_to_numbers_keeps_non_numbers():
    assert words_to_numbers("one of the two a dogs".split()) == ["1", "of", "the", "2", "a", "dogs"]
    assert words_to_numbers(["a", "hundred", "and", "five", "and", "six"]) == ["105", "and", "6"]
    assert words_to_numbers(["first", "second", "oh"]) == ["first", "second", "oh"]


def test_number_to_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(1961) == "one thousand nine hundred sixty one"
    assert number_to_words(40) == "forty"
    assert number_to_words(21, ordinal=True) == "twenty first"
    assert number_to_words(12, ordinal=True) == "twelfth"
    assert number_to_words(30, ordinal=True) == "thirtieth"
    assert number_to_words(2_000_005) == "two million five"


@given(st.integers(min_value=0, max_value=10**12 - 1))
@settings(max_examples=300, deadline=None)
def test_numbers_round_trip_between_digits_and_words(n):
    assert normalize_text(number_to_words(n)) == str(n)
    assert normalize_text(f"{n:,}") == str(n)
    assert wer(f"we counted {n} birds", f"we counted {number_to_words(n)} birds") == 0.0


@given(st.integers(min_value=1300, max_value=2099))
@settings(max_examples=200, deadline=None)
def test_years_spoken_in_pairs(year):
    high, low = divmod(year, 100)
    if low == 0:
        spoken = f"{number_to_words(high)} hundred"
    elif low < 10:
        spoken = f"{number_to_words(high)} oh {number_to_words(low)}"
    else:
        spoken = f"{number_to_words(high)} {number_to_words(low)}"
    assert normalize_text(f"back in {spoken}") == f"back in {year}"


def test_wer_counts_edits_against_reference_length():
    ref = "and so my fellow americans ask not"
    assert wer(ref, ref) == 0.0
    assert word_errors(ref, "and so my fellow americans ask") == (1, 7)  # deletion
    assert word_errors(ref, "and so my dear fellow americans ask not") == (1, 7)  # insertion
    assert word_errors(ref, "and so my yellow americans ask not") == (1, 7)  # substitution
    assert wer(ref, "") == 1.0
    assert wer("", "") == 0.0
    assert wer("", "hello") == 1.0
    assert wer("a b", "c d e f") == 2.0  # WER can exceed 1


@given(st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "ten", "10", "Mr.", "mister"]), max_size=12),
       st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "ten", "10", "Mr.", "mister"]), max_size=12))
@settings(max_examples=200, deadline=None)
def test_wer_is_a_normalised_edit_distance(ref_words, hyp_words):
    ref, hyp = " ".join(ref_words), " ".join(hyp_words)
    edits, n = word_errors(ref, hyp)
    assert edits == word_errors(hyp, ref)[0]  # symmetric distance
    assert abs(len(normalize_text(ref).split()) - len(normalize_text(hyp).split())) <= edits
    assert edits <= max(n, len(normalize_text(hyp).split()))
    assert wer(ref, ref) == 0.0
