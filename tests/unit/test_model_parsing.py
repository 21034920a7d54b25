"""Dataset parsing: every accepted format, encodings, and every bad input."""

from __future__ import annotations

import codecs
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.errors import DatasetError
from model.parsing import parse_dataset
from model.textdecode import decode_text


def pairs(parsed):
    return [(e.text, e.label) for e in parsed.examples]


# ------------------------------------------------------------ formats ----

def test_csv_with_header():
    p = parse_dataset(b"text,label\nhello there,greet\nbye now,leave\n")
    assert p.format == "csv"
    assert pairs(p) == [("hello there", "greet"), ("bye now", "leave")]
    assert p.labelled and not p.has_response


def test_tsv_detected_by_content_even_with_csv_extension():
    p = parse_dataset(b"text\tlabel\nhi, you\tgreet\n", filename="data.csv")
    assert p.format == "tsv"
    assert pairs(p) == [("hi, you", "greet")]


@pytest.mark.parametrize("text_col", ["sentence", "Utterance", "MESSAGE", "query"])
@pytest.mark.parametrize("label_col", ["intent", "category", "class", "target", "sentiment"])
def test_column_synonyms(text_col, label_col):
    p = parse_dataset(f"{label_col},{text_col}\nyes,hello world\n".encode())
    assert pairs(p) == [("hello world", "yes")]


def test_extra_columns_ignored_and_response_kept():
    p = parse_dataset(b"id,text,label,response\n1,hi,greet,Hello!\n2,bye,leave,See you\n")
    assert [(e.text, e.label, e.response) for e in p.examples] == [
        ("hi", "greet", "Hello!"), ("bye", "leave", "See you"),
    ]
    assert p.has_response


def test_quoted_fields_with_commas_and_newlines():
    p = parse_dataset(b'text,label\n"one, two\nthree",x\n"say ""hi""",y\n')
    assert pairs(p) == [("one, two\nthree", "x"), ('say "hi"', "y")]


def test_unquoted_commas_in_text_are_joined_with_a_warning():
    p = parse_dataset(b"text,label\nwell, hello there,greet\n")
    assert pairs(p) == [("well, hello there", "greet")]
    assert any("joined" in w for w in p.warnings)


def test_semicolon_delimited():
    assert pairs(parse_dataset(b"text;label\nhola;es\n")) == [("hola", "es")]


def test_json_list_of_objects():
    data = json.dumps([{"text": "hi", "label": "greet"}, {"sentence": "bye", "intent": "leave"}])
    p = parse_dataset(data.encode(), "x.json")
    assert p.format == "json"
    assert pairs(p) == [("hi", "greet"), ("bye", "leave")]


def test_json_pairs_and_triples():
    p = parse_dataset(b'[["hi", "greet"], ["bye", "leave", "Goodbye!"]]')
    assert [(e.text, e.label, e.response) for e in p.examples] == [
        ("hi", "greet", None), ("bye", "leave", "Goodbye!"),
    ]


def test_json_label_to_texts_mapping_and_wrapper():
    p = parse_dataset(b'{"greet": ["hi", "hello"], "leave": "bye"}')
    assert sorted(pairs(p)) == [("bye", "leave"), ("hello", "greet"), ("hi", "greet")]
    p = parse_dataset(b'{"examples": [{"text": "hi", "label": "greet"}]}')
    assert pairs(p) == [("hi", "greet")]


def test_jsonl():
    data = b'{"text": "hi", "label": "greet"}\n\n{"text": "bye", "label": "leave"}\n'
    p = parse_dataset(data, "x.txt")
    assert p.format == "jsonl"
    assert pairs(p) == [("hi", "greet"), ("bye", "leave")]


def test_plain_text_uses_default_label():
    p = parse_dataset(b"I love it\n\n  so good  \n", default_label="positive")
    assert p.format == "text"
    assert pairs(p) == [("I love it", "positive"), ("so good", "positive")]


def test_text_only_column_uses_default_label_without_splitting_commas():
    p = parse_dataset(b'text\nhello, world\n"quoted, too"\n', default_label="pos")
    assert pairs(p) == [("hello, world", "pos"), ("quoted, too", "pos")]


def test_inline_json_list_of_strings_is_unlabelled():
    p = parse_dataset('["great product", "awful"]', allow_unlabelled=True)
    assert p.labelled is False
    assert [e.text for e in p.examples] == ["great product", "awful"]
    assert all(e.label is None for e in p.examples)


def test_numbers_are_accepted_as_text_and_labels():
    p = parse_dataset(b'[["42", 1], [3.5, "x"]]')
    assert pairs(p) == [("42", "1"), ("3.5", "x")]


# ---------------------------------------------------------- encodings ----

@pytest.mark.parametrize(
    "encoded",
    [
        "text,label\ncafé crème,fr\n".encode("utf-8"),
        codecs.BOM_UTF8 + "text,label\ncafé crème,fr\n".encode("utf-8"),
        "text,label\ncafé crème,fr\n".encode("utf-16"),
        codecs.BOM_UTF16_BE + "text,label\ncafé crème,fr\n".encode("utf-16-be"),
        "text,label\ncafé crème,fr\n".encode("utf-16-le"),  # no BOM
        "text,label\ncafé crème,fr\n".encode("cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16be-bom", "utf16le-nobom", "cp1252"],
)
def test_encodings(encoded):
    assert pairs(parse_dataset(encoded)) == [("café crème", "fr")]


def test_cp1252_smart_quotes():
    data = "text,label\n\u201cnice\u201d \u2013 really,pos\n".encode("cp1252")
    assert pairs(parse_dataset(data)) == [("\u201cnice\u201d \u2013 really", "pos")]


def test_binary_garbage_refused():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    with pytest.raises(DatasetError, match="doesn't look like text"):
        parse_dataset(png, "data.csv")


def test_undecodable_legacy_bytes_refused():
    with pytest.raises(DatasetError) as info:
        decode_text(bytes(range(0x80, 0x100)) * 8)
    assert "UTF-8" in info.value.user_message


def test_bad_utf8_after_bom_refused():
    with pytest.raises(DatasetError, match="UTF-8"):
        parse_dataset(codecs.BOM_UTF8 + b"text,label\n\xff\xfe\xfa,x\n")


# --------------------------------------------------------- bad inputs ----

@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty"),
        (b"   \n\n\t ", "blank"),
        (b"text,label\n", "couldn't find any examples"),
        (b"foo,bar\n1,2\n", "couldn't find a text column"),
        (b"text,label\nhello,\n", "no labels"),
        (b"text,label\nhello,a\nbye,\n", "Some rows have no label"),
        (b"text,label\n,a\n", "empty text"),
        (b'[{"text": "", "label": "a"}]', "empty text"),
        (b'[{"label": "a"}]', 'no "text" field'),
        (b'[{"text": "hi", "label": "a"},]', "malformed"),
        (b'{"text": "hi", "label": ', "malformed"),
        (b"[1, 2, 3]", "Item 1"),
        (b'[["a", "b", "c", "d"]]', "Item 1"),
        (b'[{"text": ["a"], "label": "x"}]', "should be text"),
        (b'[{"text": true, "label": "x"}]', "true/false"),
        (b"just a line without label", "no labels"),
    ],
)
def test_bad_inputs_raise_dataset_error(data, match):
    with pytest.raises(DatasetError) as info:
        parse_dataset(data, "upload.csv" if data.startswith(b"foo") else None)
    assert match.lower() in info.value.user_message.lower()


def test_malformed_json_message_has_position():
    with pytest.raises(DatasetError) as info:
        parse_dataset(b'[\n{"text": "a" "label": "b"}\n]', "x.json")
    assert "line 2" in info.value.user_message


def test_limits_are_constructor_params():
    with pytest.raises(DatasetError, match="limit"):
        parse_dataset(b"text,label\n" + b"a,b\n" * 20, max_bytes=50)
    with pytest.raises(DatasetError, match="more than 3 rows"):
        parse_dataset(b"text,label\n" + b"a,b\n" * 4, max_rows=3)
    assert len(parse_dataset(b"text,label\n" + b"a,b\n" * 3, max_rows=3).examples) == 3


def test_text_starting_with_bracket_is_still_plain_text():
    p = parse_dataset(b"[1] first point\n[2] second point\n", default_label="note")
    assert p.format == "text" and len(p.examples) == 2


# ------------------------------------------------------------ fuzzing ----

def _only_dataset_errors(data, **kw):
    try:
        parsed = parse_dataset(data, **kw)
    except DatasetError as exc:
        assert isinstance(exc.user_message, str) and exc.user_message
        return
    assert parsed.examples
    for e in parsed.examples:
        assert e.text and e.text == e.text.strip()


_fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fuzz
@given(st.binary(max_size=400), st.sampled_from([None, "a.csv", "a.json", "a.txt", "a.tsv"]), st.booleans())
def test_fuzz_arbitrary_bytes(data, filename, unlabelled):
    _only_dataset_errors(data, filename=filename, allow_unlabelled=unlabelled)


@_fuzz
@given(st.text(max_size=300), st.sampled_from([None, "lbl"]))
def test_fuzz_arbitrary_text(text, label):
    _only_dataset_errors(text.encode("utf-8", "surrogatepass"), default_label=label)


_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@_fuzz
@given(
    st.sampled_from(["text,label", "sentence\tintent", "label;text;response", "text"]),
    st.lists(st.lists(_cell, max_size=4), max_size=8),
)
def test_fuzz_csv_like(header, rows):
    delim = "\t" if "\t" in header else (";" if ";" in header else ",")
    body = "\n".join(delim.join(r) for r in rows)
    _only_dataset_errors((header + "\n" + body).encode("utf-8", "surrogatepass"), allow_unlabelled=True)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _cell)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["text", "label", "x", "data"]), inner, max_size=3)),
    max_leaves=12,
)


@_fuzz
@given(_json)
def test_fuzz_json_like(value):
    _only_dataset_errors(json.dumps(value).encode(), filename="x.json", allow_unlabelled=True)


def test_deeply_nested_json_is_a_dataset_error():
    with pytest.raises(DatasetError):
        parse_dataset(b"[" * 100_000 + b"]" * 100_000)
