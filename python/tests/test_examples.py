"""The examples run, and give the library's codes and results; the docstring examples pass."""

from __future__ import annotations

import doctest
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SLICE

import embquant

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sentence_transformers_example(capsys: pytest.CaptureFixture[str]) -> None:
    report = load_example("sentence_transformers_style").main([])
    out = capsys.readouterr().out
    assert "recall:" in out and "binary:8,int8:2,float" in out
    configs = {c["config"] for c in report["configs"]}
    assert {"binary:8,int8:2,float", "binary:4,int8", "int8", "binary"} <= configs


def test_pyspark_example(tmp_path: Path, x: np.ndarray, ids: np.ndarray) -> None:
    pytest.importorskip(
        "pyspark", reason="pyspark is not installed (optional: ~460 MB, not in CI requirements)"
    )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no JDK (java) for PySpark")
    out, cal_path = tmp_path / "spark-out", tmp_path / "cal.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "pyspark_map_in_arrow.py"),
            "--input",
            str(SLICE),
            "--output",
            str(out),
            "--calibration-out",
            str(cal_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    cal = embquant.Calibration.from_json(cal_path.read_text())
    assert cal.lo == embquant.calibrate(x).lo and cal.rows == 5000
    table = pq.read_table(out).sort_by("id")
    assert table["id"].to_numpy().tolist() == ids.tolist()
    int8 = embquant.quantize(x, "int8", cal, output="numpy")
    got = np.frombuffer(b"".join(table["embedding_int8"].to_pylist()), np.int8).reshape(x.shape)
    assert np.array_equal(got, int8)
    bits = np.frombuffer(b"".join(table["embedding_bin"].to_pylist()), np.uint8).reshape(-1, 48)
    assert np.array_equal(bits, np.packbits(x > 0, axis=1))


MODULES = ["embquant", "embquant._st", "embquant._jobs", "embquant._search", "embquant.datafusion"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name == "embquant.datafusion":
        pytest.importorskip("datafusion")
    monkeypatch.chdir(REPO)  # the examples name tests/data/... relative to the repository
    module: Any = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
