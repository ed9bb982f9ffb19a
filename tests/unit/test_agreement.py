"""LocalAgreement-2: words two consecutive hypotheses agree on are committed, and stay."""

from __future__ import annotations

from pipeline.agreement import agree


def test_a_first_hypothesis_commits_nothing() -> None:
    reading = agree("", "", "ask not what")
    assert (reading.committed, reading.unstable) == ("", "ask not what")


def test_two_hypotheses_commit_what_they_agree_on() -> None:
    reading = agree("", "ask not what you", "ask not what your country")
    assert (reading.committed, reading.unstable) == ("ask not what", "your country")


def test_case_and_punctuation_do_not_make_words_differ() -> None:
    reading = agree("", "And so, my", "and so my fellow")
    assert reading.committed == "and so my"
    assert reading.unstable == "fellow"


def test_committed_words_never_shrink_when_a_hypothesis_contradicts_them() -> None:
    reading = agree("ask not what", "ask not what your", "ask now what your country")
    assert reading.committed == "ask not what"
    assert reading.unstable == "your country"


def test_commitment_grows_from_the_committed_words_on() -> None:
    reading = agree("ask not", "ask not what your", "ask not what your country can")
    assert (reading.committed, reading.unstable) == ("ask not what your", "country can")


def test_a_previous_hypothesis_older_than_the_commit_adds_nothing() -> None:
    reading = agree("ask not what", "ask", "ask not what your country")
    assert (reading.committed, reading.unstable) == ("ask not what", "your country")
