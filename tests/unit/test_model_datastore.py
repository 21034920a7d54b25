"""Dataset storage: per-scope files, shared files, sanitising, atomicity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage import atomic
from model.datastore import DatasetStore
from model.errors import DatasetError, ModelError
from model.names import sanitize_name


@pytest.fixture
def store(tmp_path):
    return DatasetStore(tmp_path, max_bytes=5_000, max_rows=50)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_save_stores_normalised_csv_and_reports(store, tmp_path):
    data = b'[{"text": "hi", "label": "greet"}, {"text": "Hi ", "label": "greet"}, {"text": "hi", "label": "leave"}]'
    info = store.save("123", "My Intents!.json", data)
    assert (info.name, info.rows, info.classes, info.shared) == ("my_intents", 3, 2, False)
    assert any("1 duplicate" in w for w in info.warnings)
    assert any("1 text(s) appear with conflicting labels" in w for w in info.warnings)
    path = tmp_path / "datasets" / "123" / "my_intents.csv"
    assert path.read_text(encoding="utf-8") == "text,label\nhi,greet\nHi,greet\nhi,leave\n"
    assert [(e.text, e.label) for e in store.load("123", "MY_INTENTS")] == [
        ("hi", "greet"), ("Hi", "greet"), ("hi", "leave"),
    ]


def test_save_keeps_responses(store):
    store.save("1", "faq.csv", b"question,label,answer\nopening hours?,hours,9 to 5\nwhere?,place,\n")
    e, f = store.load("1", "faq")
    assert (e.text, e.label, e.response) == ("opening hours?", "hours", "9 to 5")
    assert (f.text, f.label, f.response) == ("where?", "place", None)


def test_single_class_upload_is_refused(store, tmp_path):
    with pytest.raises(DatasetError) as info:
        store.save("1", "one.csv", b"text,label\na,x\nb,x\n")
    assert "class" in info.value.user_message
    assert not (tmp_path / "datasets" / "1" / "one.csv").exists()


def test_plain_text_with_caller_label_merges_into_named_dataset(store, tmp_path):
    # The original bot's flow: a file of positives, then a file of negatives, into one dataset.
    info = store.save("1", "reviews.txt", b"great\nlovely\n", default_label="positive")
    assert (info.name, info.rows, info.classes) == ("reviews", 2, 1)  # kept: one class so far
    info = store.save("1", "bad.txt", b"awful\n", default_label="negative", name="reviews")
    assert (info.rows, info.classes) == (3, 2)
    info = store.save("1", "other.txt", b"meh\n", default_label="neutral", name="reviews")
    assert (info.name, info.rows, info.classes) == ("reviews", 4, 3)
    assert [e.label for e in store.load("1", "reviews")] == ["positive", "positive", "negative", "neutral"]


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00\x01\x02binary", b"text,label\n" + b"x,y\n" * 60, b'[{"text": 1,', b"text,label\na,x\nb,x\n", b"foo,bar\n1,2\n"],
)
def test_bad_upload_changes_nothing_on_disk(store, tmp_path, bad):
    store.save("1", "keep.csv", b"text,label\na,b\nc,d\n")
    before = snapshot(tmp_path)
    with pytest.raises(DatasetError):
        store.save("1", "keep.csv", bad)
    assert snapshot(tmp_path) == before


def test_failed_atomic_write_keeps_old_file_and_no_temp(store, tmp_path, monkeypatch):
    store.save("1", "d.csv", b"text,label\na,b\nc,d\n")
    before = snapshot(tmp_path)

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        store.save("1", "d.csv", b"text,label\nnew,row\nold,col\n")
    assert snapshot(tmp_path) == before


def test_add_example_creates_and_appends(store):
    info = store.add_example("1", "new set", "greet", "hello")
    assert (info.name, info.rows, info.classes) == ("new_set", 1, 1)
    info = store.add_example("1", "new_set", "leave", "bye, friend\nsee you")
    assert (info.rows, info.classes) == (2, 2)
    assert [(e.text, e.label) for e in store.load("1", "new_set")][-1] == ("bye, friend\nsee you", "leave")


def test_add_example_validates_and_respects_row_limit(store):
    with pytest.raises(DatasetError):
        store.add_example("1", "d", "x", "   ")
    with pytest.raises(DatasetError):
        store.add_example("1", "d", "", "text")
    small = DatasetStore(store.root.parent, max_rows=2)
    small.add_example("2", "d", "a", "one")
    small.add_example("2", "d", "b", "two")
    with pytest.raises(DatasetError, match="limit"):
        small.add_example("2", "d", "a", "three")


def test_shared_files_visible_to_every_scope_and_local_wins(store, tmp_path):
    shared_dir = tmp_path / "datasets"
    shared_dir.mkdir(parents=True)
    (shared_dir / "FAQ.csv").write_bytes(b"text,label\nwhen open,hours\nwhere,location\n")
    (shared_dir / "notes.md").write_text("not a dataset")
    for scope in ("111", "dm-222"):
        assert store.exists(scope, "faq")
        (info,) = store.list(scope)
        assert (info.name, info.rows, info.shared) == ("faq", 2, True)
    store.save("111", "faq.csv", b"text,label\nlocal only,x\nanother,y\nthird,y\n")
    assert [i.rows for i in store.list("111")] == [3]
    assert not store.list("111")[0].shared
    assert store.list("dm-222")[0].rows == 2


def test_add_example_to_shared_copies_into_scope_without_touching_shared(store, tmp_path):
    shared = tmp_path / "datasets" / "faq.csv"
    shared.parent.mkdir(parents=True)
    shared.write_bytes(b"text,label\nwhen open,hours\n")
    info = store.add_example("9", "faq", "location", "where are you")
    assert (info.rows, info.shared) == (2, False)
    assert shared.read_bytes() == b"text,label\nwhen open,hours\n"
    assert store.load("10", "faq")[0].text == "when open"


def test_missing_dataset_is_a_friendly_error(store):
    assert not store.exists("1", "nope")
    with pytest.raises(DatasetError) as info:
        store.load("1", "nope")
    assert "nope" in info.value.user_message


def test_list_is_sorted_and_skips_unreadable_shared(store, tmp_path):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "broken.json").write_bytes(b"[{")
    store.save("1", "b.csv", b"text,label\nx,y\nz,w\n")
    store.save("1", "a.csv", b"text,label\nx,y\nz,w\n")
    assert [i.name for i in store.list("1")] == ["a", "b"]


@pytest.mark.parametrize(
    "raw, expected",
    [("Hello World", "hello_world"), ("../../etc/passwd", "etc_passwd"), ("ÄÖü-x", "x"), ("a" * 100, "a" * 64)],
)
def test_sanitize_name(raw, expected):
    assert sanitize_name(raw) == expected


def test_sanitize_rejects_empty_and_scope_checked(store):
    with pytest.raises(DatasetError):
        sanitize_name("!!!")
    with pytest.raises(ModelError):
        store.list("../evil")


def test_upload_without_usable_name_gets_default(store):
    assert store.save("1", None, b"text,label\nx,y\nz,w\n").name == "dataset"
    assert store.save("1", "x.csv", b"text,label\nx,y\nz,w\n", name="Chosen Name").name == "chosen_name"
    assert os.path.exists(store.root / "1" / "chosen_name.csv")


def test_dataset_count_quota_per_scope_and_delete_frees_it(tmp_path):
    store = DatasetStore(tmp_path, max_datasets=2, max_scope_bytes=1_000_000)
    two = b"text,label\na,x\nb,y\n"
    store.save("1", "one.csv", two)
    store.save("1", "two.csv", two)
    store.save("1", "two.csv", two + b"c,x\n")  # replacing an existing one is fine
    store.add_example("1", "one", "x", "more")  # so is adding to one
    with pytest.raises(DatasetError) as full:
        store.save("1", "three.csv", two)
    assert "already has 2 datasets, the limit is 2" in full.value.user_message
    assert "Delete a dataset" in full.value.user_message
    with pytest.raises(DatasetError):
        store.add_example("1", "three", "x", "new dataset by example")
    assert [d.name for d in store.list("1")] == ["one", "two"]
    store.save("2", "three.csv", two)  # other servers have their own quota
    assert store.delete("1", "two") and not store.delete("1", "two")
    assert store.save("1", "three.csv", two).name == "three"
    assert store.usage("1")[0] == 2


def test_dataset_bytes_quota_per_scope(tmp_path):
    store = DatasetStore(tmp_path, max_datasets=10, max_scope_bytes=300)
    rows = "".join(f"example number {i},{'ab'[i % 2]}\n" for i in range(8)).encode()
    store.save("1", "a.csv", b"text,label\n" + rows)
    used = store.usage("1")[1]
    assert 150 < used < 300
    before = snapshot(tmp_path)
    with pytest.raises(DatasetError) as full:
        store.save("1", "b.csv", b"text,label\n" + rows)
    assert f"to {used * 2} bytes; the limit is 300 bytes per server" in full.value.user_message
    assert "Delete datasets" in full.value.user_message
    with pytest.raises(DatasetError):
        store.add_example("1", "a", "a", "x" * 200)
    assert snapshot(tmp_path) == before  # nothing written
    store.delete("1", "a")
    assert store.usage("1") == (0, 0)
    store.save("1", "b.csv", b"text,label\n" + rows)
