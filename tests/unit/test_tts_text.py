"""Cleaning Discord messages into speakable words, and sentence splitting."""

import pytest

from audio.speech_text import MORE, cap_text, chunk_text, clean_text, resolve_mentions, split_sentences


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("**bold** and *italic* and _also italic_", "bold and italic and also italic"),
        ("__underlined__ ~~struck~~ ***both***", "underlined struck both"),
        ("the answer is ||forty two||", "the answer is forty two"),
        ("# Big title", "Big title"),
        ("### Small title\n-# subtext here", "Small title. subtext here"),
        ("> quoted words\n>>> more quoted", "quoted words. more quoted"),
        ("- first\n- second\n1. third", "first. second. third"),
        (r"not \*emphasis\* here", "not emphasis here"),
        ("snake_case_name", "snake case name"),
        ("2 * 3 = 6", "2 3 = 6"),
    ],
)
def test_markdown_is_reduced_to_its_words(raw, spoken):
    assert clean_text(raw) == spoken


def test_code_blocks_and_inline_code_are_dropped():
    raw = "Try this:\n```python\nprint('hello')\nx = 1\n```\nthen run `make test` again."
    assert clean_text(raw) == "Try this: then run again."


def test_unclosed_code_block_is_dropped_to_the_end():
    assert clean_text("Before ```js\nlet a = 1;\nlet b = 2;") == "Before"


def test_urls_are_dropped_but_masked_link_text_is_kept():
    raw = "See https://example.com/a?b=1 or <https://no.embed/x> and www.site.org, or [the docs](https://docs.io/x)."
    assert clean_text(raw) == "See or and, or the docs."


@pytest.mark.parametrize("names", [{"123": "alice", "456": "bob", "42": "mods", "789": "general"},
                                   {123: "alice", 456: "bob", 42: "mods", 789: "general"}])
def test_mentions_become_names_from_a_mapping(names):
    raw = "<@123> and <@!456> ping <@&42> in <#789>"
    assert clean_text(raw, names=names) == "alice and bob ping mods in general"


def test_mentions_become_names_from_a_callback_and_unknown_ids_stay_neutral():
    calls = []

    def lookup(snowflake):
        calls.append(snowflake)
        return {"1": "carol"}.get(snowflake)

    raw = "<@1> meet <@2>, see <#3> and <@&4>"
    assert clean_text(raw, names=lookup) == "carol meet someone, see a channel and a role"
    assert calls == ["1", "2", "4", "3"]  # users, then roles, then channels


def test_everyone_slash_commands_and_timestamps():
    assert resolve_mentions("@everyone use </ping:99>").split() == ["everyone", "use", "ping"]
    assert clean_text("meet <t:1700000000:R> at noon") == "meet at noon"


def test_custom_and_unicode_emoji_are_removed():
    raw = "nice <:pog:1234> <a:dance:5678> 😀👍🏽 🇺🇸 👨‍👩‍👧 ❤️ ⭐ work"
    assert clean_text(raw) == "nice work"


def test_whitespace_is_collapsed_and_lines_become_sentences():
    assert clean_text("  hello \t  world \n\n\n next   line  ") == "hello world. next line"
    assert clean_text("Done!\nReally?\nyes") == "Done! Really? yes"


@pytest.mark.parametrize("raw", ["", "   \n\t ", "😀🎉", "```only code```", "`x`", "https://a.b/c", "<:e:1>", "...", "**__**"])
def test_nothing_to_say_gives_empty_string(raw):
    assert clean_text(raw) == ""


def test_long_text_is_capped_at_a_word_with_and_more():
    raw = " ".join(f"word{i}" for i in range(200))
    spoken = clean_text(raw, max_chars=80)
    assert len(spoken) <= 80
    assert spoken.endswith(f" {MORE}.")
    words = spoken[: -len(MORE) - 2].split()
    assert words == [f"word{i}" for i in range(len(words))]  # no word cut in half
    assert len(words) >= 8


def test_long_text_is_capped_at_a_sentence_when_that_keeps_enough():
    raw = "This is the first sentence. This is another one here. And a third sentence that is long."
    spoken = clean_text(raw, max_chars=63)
    assert spoken == "This is the first sentence. This is another one here. And more."
    assert clean_text(raw, max_chars=60) == "This is the first sentence. And more."


def test_short_text_is_not_capped_and_cap_is_validated():
    assert clean_text("short", max_chars=5) == "short"
    with pytest.raises(ValueError):
        cap_text("text", 0)


def test_cap_never_exceeds_the_limit():
    text = "a" * 30 + " " + "b" * 30 + ". " + "c " * 100
    for limit in range(1, 120):
        assert len(cap_text(text, limit)) <= limit


def test_split_sentences_keeps_order_and_abbreviations():
    text = 'Dr. Smith arrived at 3.5 p.m. today. He said hi! Really? Yes… "Quoted." Fine (see this.) end'
    assert split_sentences(text) == [
        "Dr. Smith arrived at 3.5 p.m. today.",
        "He said hi!",
        "Really?",
        "Yes…",
        '"Quoted."',
        "Fine (see this.)",
        "end",
    ]


def test_split_sentences_breaks_very_long_sentences_at_commas():
    clause = "this clause has quite a few words in it"
    sentence = ", ".join([clause] * 12) + "."
    parts = split_sentences(sentence)
    assert len(parts) > 1
    assert all(len(p) <= 200 for p in parts)
    assert " ".join(parts) == sentence


def test_split_sentences_of_nothing():
    assert split_sentences("") == []
    assert split_sentences("  ... !! ") == []


def test_chunk_text_prefers_sentences_then_clauses_then_words():
    text = ("Short one. This clause is first, and this clause is second; "
            "then a very long run of words without any punctuation that goes on and on for a while. End.")
    chunks = chunk_text(text, 40)
    assert chunks[0] == "Short one."
    assert chunks[1] == "This clause is first,"
    assert chunks[2] == "and this clause is second;"
    assert chunks[-1] == "End."
    assert all(len(c) <= 40 for c in chunks)
    assert " ".join(chunks) == text


def test_chunk_text_keeps_an_overlong_word_whole():
    assert chunk_text("a" * 50 + " b c", 10) == ["a" * 50, "b c"]
    with pytest.raises(ValueError):
        chunk_text("x", 0)
