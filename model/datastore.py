"""Datasets on disk: per-scope CSVs plus hand-placed shared files.

Layout: ``<data_dir>/datasets/<scope>/<name>.csv`` for uploads and
``<data_dir>/datasets/<anything>.<ext>`` for files an admin drops in, usable
by every scope under their (sanitised) stem. A scope's own file wins.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from pathlib import Path

from errors import Phrase
from storage.atomic import atomic_write_text
from .errors import DatasetError
from .names import check_scope, name_from_filename, sanitize_name
from .parsing import parse_dataset
from .types import DatasetInfo, Example
from .validation import label_counts, quality_warnings, require_trainable

SHARED_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".txt")


def examples_to_csv(examples: list[Example]) -> str:
    """Normalised storage format: text,label[,response] with a header."""
    with_response = any(e.response for e in examples)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["text", "label", "response"] if with_response else ["text", "label"])
    for e in examples:
        row = [e.text, e.label or ""]
        if with_response:
            row.append(e.response or "")
        writer.writerow(row)
    return buf.getvalue()


class DatasetStore:
    """Blocking dataset operations; call them from a worker thread."""

    def __init__(self, data_dir: Path, *, max_bytes: int = 10_000_000, max_rows: int = 200_000,
                 max_datasets: int = 20, max_scope_bytes: int = 50_000_000) -> None:
        self.root = Path(data_dir) / "datasets"
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        # Per-scope quotas: one server can't fill the disk for every other one.
        self.max_datasets = max_datasets
        self.max_scope_bytes = max_scope_bytes
        self._locks: dict[Path, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._info_cache: dict[Path, tuple[int, int, DatasetInfo]] = {}

    # -------------------------------------------------------------- paths --
    def _lock(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks[path]

    def local_path(self, scope: str, name: str) -> Path:
        return self.root / check_scope(scope) / f"{sanitize_name(name)}.csv"

    def _shared_files(self) -> dict[str, Path]:
        """Shared datasets by sanitised stem (first one wins on clashes)."""
        found: dict[str, Path] = {}
        if not self.root.is_dir():
            return found
        for path in sorted(self.root.iterdir()):
            if path.is_file() and path.suffix.lower() in SHARED_EXTENSIONS and not path.name.startswith("."):
                try:
                    found.setdefault(sanitize_name(path.stem), path)
                except DatasetError:
                    continue
        return found

    def resolve(self, scope: str, name: str) -> tuple[Path, bool] | None:
        """Where dataset ``name`` lives for ``scope``; local beats shared."""
        local = self.local_path(scope, name)
        if local.is_file():
            return local, False
        shared = self._shared_files().get(sanitize_name(name))
        return (shared, True) if shared else None

    def usage(self, scope: str) -> tuple[int, int]:
        """(number of datasets, bytes on disk) a scope uses (shared files not counted)."""
        folder = self.root / check_scope(scope)
        if not folder.is_dir():
            return 0, 0
        sizes = []
        for path in folder.glob("*.csv"):
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:
                continue
        return len(sizes), sum(sizes)

    def _check_quota(self, scope: str, path: Path, new_size: int) -> None:
        """Refuse a write that would pass the scope's dataset count or byte quota."""
        count, used = self.usage(scope)
        try:
            current = path.stat().st_size
        except FileNotFoundError:
            current = None
        if current is None and count >= self.max_datasets:
            raise DatasetError(Phrase(
                "This server already has {count} datasets, the limit is {limit}. "
                "Delete a dataset it no longer needs, or add to an existing one, then try again.",
                count=count, limit=self.max_datasets))
        after = used - (current or 0) + new_size
        if after > self.max_scope_bytes:
            raise DatasetError(Phrase(
                "That would bring this server's datasets to {size}; the limit is {limit} per server. Delete "
                "datasets it no longer needs (or trim this one), then try again.",
                size=_size(after), limit=_size(self.max_scope_bytes)))

    # --------------------------------------------------------------- read --
    def _parse_file(self, path: Path) -> list[Example]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(Phrase("I couldn't read that dataset file."), detail=str(exc)) from None
        return parse_dataset(data, path.name, max_bytes=self.max_bytes, max_rows=self.max_rows).examples

    def exists(self, scope: str, name: str) -> bool:
        try:
            return self.resolve(scope, name) is not None
        except DatasetError:
            return False

    def load(self, scope: str, name: str) -> list[Example]:
        """All examples of a dataset, or DatasetError if there's no such dataset."""
        found = self.resolve(scope, name)
        if found is None:
            raise DatasetError(Phrase(
                "There's no dataset called `{name}`. Upload one first, or list them to check the name.",
                name=sanitize_name(name)))
        return self._parse_file(found[0])

    def info(self, scope: str, name: str) -> DatasetInfo:
        found = self.resolve(scope, name)
        if found is None:
            raise DatasetError(Phrase("There's no dataset called `{name}`.", name=sanitize_name(name)))
        return self._cached_info(found[0], sanitize_name(name), found[1])

    def _cached_info(self, path: Path, name: str, shared: bool) -> DatasetInfo:
        st = path.stat()
        hit = self._info_cache.get(path)
        if hit and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            return hit[2]
        examples = self._parse_file(path)
        info = _summarise(name, examples, shared)
        self._info_cache[path] = (st.st_mtime_ns, st.st_size, info)
        return info

    def list(self, scope: str) -> list[DatasetInfo]:
        """Datasets visible to ``scope``; unreadable shared files are skipped."""
        infos: dict[str, DatasetInfo] = {}
        local_dir = self.root / check_scope(scope)
        if local_dir.is_dir():
            for path in sorted(local_dir.glob("*.csv")):
                try:
                    infos[path.stem] = self._cached_info(path, path.stem, False)
                except DatasetError:
                    continue
        for name, path in self._shared_files().items():
            if name not in infos:
                try:
                    infos[name] = self._cached_info(path, name, True)
                except DatasetError:
                    continue
        return [infos[k] for k in sorted(infos)]

    # -------------------------------------------------------------- write --
    def save(self, scope: str, filename: str | None, data: bytes | str, default_label: str | None = None,
             name: str | None = None, merge: bool | None = None) -> DatasetInfo:
        """Parse and validate an upload, then store it normalised as CSV.

        An upload must hold at least two classes (it exists to be trained
        on). A plain-text upload labelled by the caller is one class by
        nature, so by default it is *merged* into the dataset of the same
        name (pass ``name`` to pick it), which is how ``!train positive`` and
        ``!train negative`` files build one dataset: the first of those is
        kept even though it has one class so far.
        """
        dataset = sanitize_name(name) if name else name_from_filename(filename)
        parsed = parse_dataset(
            data, filename, default_label, max_bytes=self.max_bytes, max_rows=self.max_rows
        )
        if merge is None:
            merge = bool((default_label or "").strip())
        path = self.local_path(scope, dataset)
        with self._lock(path):
            examples = parsed.examples
            if merge:
                found = self.resolve(scope, dataset)
                if found is not None:
                    examples = self._parse_file(found[0]) + examples
                if len(examples) > self.max_rows:
                    raise DatasetError(Phrase("Together with `{dataset}` that makes more than {limit:,} rows, my limit.",
                                              dataset=dataset, limit=self.max_rows))
            if not merge:
                require_trainable(examples)
            content = examples_to_csv(examples)
            size = len(content.encode("utf-8"))
            if merge and size > self.max_bytes:
                raise DatasetError(Phrase("Together with `{dataset}` that would pass the {limit}-byte limit.",
                                          dataset=dataset, limit=f"{self.max_bytes:,}"))
            with self._lock(path.parent):  # count and bytes are per scope
                self._check_quota(scope, path, size)
                atomic_write_text(path, content)
        info = _summarise(dataset, examples, False)
        info.warnings = parsed.warnings + info.warnings
        return info

    def add_example(self, scope: str, name: str, label: str, text: str) -> DatasetInfo:
        """Append one example, copying a shared dataset into the scope first."""
        label, text = (label or "").strip(), (text or "").strip()
        if not text:
            raise DatasetError(Phrase("The example text is empty. Write the message you want me to learn."))
        if not label:
            raise DatasetError(Phrase("Please say which label this example has."))
        dataset = sanitize_name(name)
        path = self.local_path(scope, dataset)
        with self._lock(path):
            found = self.resolve(scope, dataset)
            examples = self._parse_file(found[0]) if found else []
            if len(examples) + 1 > self.max_rows:
                raise DatasetError(Phrase("`{dataset}` already has {limit:,} rows, which is my limit.", dataset=dataset,
                                          limit=self.max_rows))
            examples.append(Example(text, label))
            content = examples_to_csv(examples)
            size = len(content.encode("utf-8"))
            if size > self.max_bytes:
                raise DatasetError(Phrase("`{dataset}` would grow past the {limit}-byte limit.", dataset=dataset,
                                          limit=f"{self.max_bytes:,}"))
            with self._lock(path.parent):
                self._check_quota(scope, path, size)
                atomic_write_text(path, content)
        return _summarise(dataset, examples, False)

    def delete(self, scope: str, name: str) -> bool:
        """Remove a scope's own copy, freeing its quota (shared files are never deleted).

        True if a file was removed. A shared dataset of the same name stays
        visible afterwards, since it was never the scope's to delete.
        """
        path = self.local_path(scope, name)
        with self._lock(path), self._lock(path.parent):
            self._info_cache.pop(path, None)
            try:
                path.unlink()
                return True
            except FileNotFoundError:
                return False


def _size(n: int) -> Phrase:
    """Bytes as people read them: 950 bytes, 12.3 KB, 4.5 MB (the unit in the reader's language)."""
    if n < 1000:
        return Phrase("{size} bytes", size=n)
    return Phrase("{size:.1f} KB", size=n / 1000) if n < 1_000_000 else Phrase("{size:.1f} MB", size=n / 1_000_000)


def _summarise(name: str, examples: list[Example], shared: bool) -> DatasetInfo:
    counts = label_counts(examples)
    return DatasetInfo(
        name=name,
        rows=len(examples),
        classes=len(counts),
        warnings=quality_warnings(examples),
        shared=shared,
        labels=sorted(counts),
    )
