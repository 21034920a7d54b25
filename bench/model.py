"""Benchmark for the text classifier (model/ package).

Usage:  python bench/model.py [--data-dir DIR] [--compare] [--no-worker]

For every CSV in ../shared/data/text (text,label columns; skipped if the
folder is absent) it prints held-out accuracy and macro-F1 on a stratified
80/20 split (random_state=0), training time and per-message prediction
latency (p50/p99 over 1000 calls). It also times training on generated
5,000-row/20-class and 25,000-row/150-class intent datasets, both in-process
and through the real worker process. ``--compare`` adds the learner
comparison that motivated the choice in model/learner.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from model.errors import DatasetError  # noqa: E402
from model.parsing import parse_dataset  # noqa: E402
from model.synthetic import intent_dataset  # noqa: E402
from model.training import train_model  # noqa: E402
from model.types import Example  # noqa: E402

TARGETS = {
    "sentiment_labelled_sentences": {"accuracy": 0.85},
    "sms_spam": {"accuracy": 0.985, "macro_f1": 0.965},
}
TIME_TARGETS = {"generated 5k/20": 3.0, "generated 25k/150": 20.0}


def load_csv(path: Path) -> tuple[list[str], list[str]]:
    parsed = parse_dataset(path.read_bytes(), path.name, max_bytes=1 << 30, max_rows=10_000_000)
    return [e.text for e in parsed.examples], [str(e.label) for e in parsed.examples]


def latency_ms(model, texts: list[str], calls: int = 1000) -> tuple[float, float]:
    timings = []
    for i in range(calls):
        text = texts[i % len(texts)]
        start = time.perf_counter()
        model.predict_one(text)
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 99))


def bench_dataset(name: str, texts: list[str], labels: list[str]) -> dict:
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.2, stratify=labels, random_state=0
    )
    result = train_model([Example(t, lab) for t, lab in zip(x_train, y_train)])
    predicted = result.model.predict(x_test)
    p50, p99 = latency_ms(result.model, x_test)
    return {
        "dataset": name,
        "rows": len(texts),
        "classes": len(set(labels)),
        "learner": result.learner,
        "accuracy": accuracy_score(y_test, predicted),
        "macro_f1": f1_score(y_test, predicted, average="macro"),
        "train_s": result.seconds,
        "p50_ms": p50,
        "p99_ms": p99,
    }


def worker_seconds(texts: list[str], labels: list[str], warm: bool) -> float:
    """Wall time from JobManager.submit to the 'finished' status (real worker process).

    ``warm`` uses the pre-started worker (libraries already imported), which is
    what the bot does after start-up; cold includes Python + sklearn start-up.
    """
    from model.jobs import JobManager

    examples = [Example(t, lab) for t, lab in zip(texts, labels)]

    async def run() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            jobs = JobManager(Path(tmp), prestart_worker=warm)
            try:
                if warm:
                    await jobs.warm_up()  # returns once the spare worker has imported everything
                start = time.perf_counter()
                final = await jobs.submit("bench", "bench", examples).done
                elapsed = time.perf_counter() - start
            finally:
                await jobs.close()
            if final.state != "finished":
                raise RuntimeError(final.message)
            return elapsed

    return asyncio.run(run())


def compare_learners(datasets: dict[str, tuple[list[str], list[str]]], slow: bool) -> None:
    """Same features, different linear learners: accuracy, macro-F1, fit time."""
    from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
    from sklearn.naive_bayes import ComplementNB
    from sklearn.svm import LinearSVC

    from model.learner import build_vectorizer

    learners = {
        "logreg C=10": lambda: LogisticRegression(C=10, max_iter=1000),
        "linsvc C=0.5": lambda: LinearSVC(C=0.5),
        "ridge a=1 (chosen)": lambda: RidgeClassifier(alpha=1.0, solver="lsqr", tol=1e-3),
        "sgd hinge 3ep (big)": lambda: SGDClassifier(alpha=1e-4, max_iter=3, tol=None, n_jobs=2, random_state=0),
        "complement NB": lambda: ComplementNB(alpha=0.3),
    }
    print("\nLearner comparison (word 1-2 + char_wb 2-5 TF-IDF; fit time excludes features)")
    print(f"{'dataset':<30} {'learner':<22} {'acc':>7} {'macroF1':>8} {'fit s':>7}")
    for name, (texts, labels) in datasets.items():
        x_train, x_test, y_train, y_test = train_test_split(
            texts, labels, test_size=0.2, stratify=labels, random_state=0
        )
        vec = build_vectorizer(len(x_train))
        a, b = vec.fit_transform(x_train), vec.transform(x_test)
        for lname, make in learners.items():
            big = len(set(labels)) > 100
            if big and not slow and ("logreg" in lname or "ridge" in lname or "linsvc" in lname):
                print(f"{name:<30} {lname:<22} {'(skipped: > 20 s; use --slow)':>24}")
                continue
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                est = make().fit(a, y_train)
                fit = time.perf_counter() - start
            pred = est.predict(b)
            print(
                f"{name:<30} {lname:<22} {accuracy_score(y_test, pred):7.4f} "
                f"{f1_score(y_test, pred, average='macro'):8.4f} {fit:7.2f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "text")
    parser.add_argument("--compare", action="store_true", help="also compare candidate learners")
    parser.add_argument("--slow", action="store_true", help="with --compare: include slow learners on 25k/150")
    parser.add_argument("--no-worker", action="store_true", help="skip the worker-process timings")
    args = parser.parse_args()

    datasets: dict[str, tuple[list[str], list[str]]] = {}
    if args.data_dir.is_dir():
        for path in sorted(args.data_dir.glob("*.csv")):
            try:
                datasets[path.stem] = load_csv(path)
            except DatasetError as exc:
                print(f"skipping {path.name}: {exc.user_message}")
    else:
        print(f"(no shared datasets at {args.data_dir}; skipping them)")
    generated = {
        "generated 5k/20": intent_dataset(5000, 20, seed=1, confusion=0.1),
        "generated 25k/150": intent_dataset(25000, 150, seed=0, confusion=0.1),
    }

    rows = []
    ok = True
    with threadpool_limits(limits=1, user_api="blas"):
        for name, (texts, labels) in {**datasets, **generated}.items():
            row = bench_dataset(name, texts, labels)
            rows.append(row)
    print(f"\n{'dataset':<30} {'rows':>6} {'cls':>4} {'learner':>7} {'acc':>7} {'macroF1':>8} "
          f"{'train s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for r in rows:
        print(
            f"{r['dataset']:<30} {r['rows']:>6} {r['classes']:>4} {r['learner']:>7} {r['accuracy']:7.4f} "
            f"{r['macro_f1']:8.4f} {r['train_s']:8.2f} {r['p50_ms']:7.3f} {r['p99_ms']:7.3f}"
        )
        for metric, target in TARGETS.get(r["dataset"], {}).items():
            good = r[metric] >= target
            ok &= good
            print(f"    target {metric} >= {target}: {'PASS' if good else 'FAIL'}")
        if r["p50_ms"] > 5:
            ok = False
            print("    target predict <= 5 ms: FAIL")

    print("\nTraining time on all rows (held-out fit + final fit); in-process best/median of 3 runs,")
    print("then one job through JobManager and the real worker process (warm = pre-started worker):")
    with threadpool_limits(limits=1, user_api="blas"):
        for name, (texts, labels) in generated.items():
            examples = [Example(t, lab) for t, lab in zip(texts, labels)]
            runs = [train_model(examples) for _ in range(3)]
            times = sorted(r.seconds for r in runs)
            line = (f"  {name:<18} in-process best {times[0]:5.2f} s, median {times[1]:5.2f} s "
                    f"({runs[0].learner}, held-out acc {runs[0].accuracy:.4f})")
            elapsed = times[0]
            if not args.no_worker:
                cold = worker_seconds(texts, labels, warm=False)
                warm = worker_seconds(texts, labels, warm=True)
                elapsed = max(elapsed, warm)
                line += f"; job warm {warm:5.2f} s, cold {cold:5.2f} s"
            good = elapsed <= TIME_TARGETS[name]
            ok &= good
            print(line + f"; target <= {TIME_TARGETS[name]:.0f} s: {'PASS' if good else 'FAIL'}")

    if args.compare:
        compare_learners({**datasets, **generated}, args.slow)
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
