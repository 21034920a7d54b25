"""Suite-wide set-up: one folder for the int8 model copies every bot under test shares.

The bot makes an int8 copy of the speech model and of the sentence encoder once per install
(`MODEL_COPIES_DIR`, default `DATA_DIR`). Each integration module starts its bot with a fresh
`DATA_DIR`, so without this every module paid for both copies again. The folder lives in
pytest's cache (kept between local runs; a clean clone makes it once). The code that makes the
copies is tested on its own, in fresh folders (tests/unit/test_stt_int8.py, test_model_encoder.py).
"""
from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:
    if os.environ.get("MODEL_COPIES_DIR"):
        return  # the developer chose one
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    folder = cache.mkdir("model-copies") if cache is not None else tempfile.mkdtemp(prefix="model-copies-")
    os.environ["MODEL_COPIES_DIR"] = str(folder)
