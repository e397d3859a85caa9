"""Fixtures: the repository's MiniLM slice, and the `embquant` CLI for cross-checks.

The CLI is the binary named by EMBQUANT_BIN (CI sets it). Without it the cross-checks are
skipped with a visible reason, except in CI (CI=true), where a missing binary fails them.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SLICE = DATA / "minilm-wordnet-5k.parquet"
QUERIES = DATA / "minilm-wordnet-queries-50.parquet"
UBINARY = DATA / "minilm-wordnet-5k-ubinary.parquet"
DIM = 384
SCHEMES = ("int8", "int4", "binary", "f16", "bf16", "rabitq")
# The column suffix `embquant quantize` gives each scheme.
SUFFIX = {"int8": "_int8", "int4": "_int4", "binary": "_bin", "f16": "_f16", "bf16": "_bf16"}
SUFFIX["rabitq"] = "_rq"


def vectors_of(table: pa.Table, column: str = "embedding") -> np.ndarray:
    """The float vectors of a FixedSizeList column as a (rows, dim) numpy array."""
    col = table.column(column).combine_chunks()
    dim = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def temp_leftovers(directory: Path) -> list[str]:
    """Files embquant's atomic writers leave behind only on a bug (`.NAME.embquant-tmp-*`)."""
    return sorted(p.name for p in directory.iterdir() if ".embquant-tmp-" in p.name)


@dataclass
class Cli:
    """Runs the embquant binary."""

    binary: str

    def run(self, *args: Any, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--quiet", *[str(a) for a in args]]
        proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
            )
        return proc

    def fail(self, *args: Any) -> str:
        """Runs a command that must fail; returns its stderr."""
        proc = self.run(*args, check=False)
        assert proc.returncode != 0, f"embquant {args} succeeded"
        return proc.stderr

    def quantize(
        self, inputs: Path | Sequence[Path], out: Path, schemes: str, cal: Path, *extra: Any
    ) -> pa.Table:
        inputs = [inputs] if isinstance(inputs, Path) else list(inputs)
        self.run("quantize", *inputs, "--scheme", schemes, "--calibration", cal, "-o", out, *extra)
        return pq.read_table(out)

    def sql(self, query: str, out: Path, **tables: Path) -> pa.Table:
        args: list[Any] = ["sql", query, "-o", out]
        for name, path in tables.items():
            args += ["--table", f"{name}={path}"]
        self.run(*args)
        return pq.read_table(out)


@pytest.fixture(scope="session")
def cli() -> Cli:
    binary = os.environ.get("EMBQUANT_BIN")
    if not binary:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but EMBQUANT_BIN is not set: the CLI cross-checks must run in CI")
        pytest.skip("EMBQUANT_BIN is not set: no embquant binary to cross-check against")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"EMBQUANT_BIN={binary} is not an executable file")
    return Cli(binary)


@pytest.fixture(scope="session")
def slice_table() -> pa.Table:
    return pq.read_table(SLICE)


@pytest.fixture(scope="session")
def x(slice_table: pa.Table) -> np.ndarray:
    """The slice's vectors, (5000, 384) float32, C-contiguous (read-only)."""
    v = np.ascontiguousarray(vectors_of(slice_table))
    v.flags.writeable = False
    return v


@pytest.fixture(scope="session")
def ids(slice_table: pa.Table) -> np.ndarray:
    return slice_table["id"].to_numpy()


@pytest.fixture(scope="session")
def queries_table() -> pa.Table:
    return pq.read_table(QUERIES)


@pytest.fixture(scope="session")
def q(queries_table: pa.Table) -> np.ndarray:
    return np.ascontiguousarray(vectors_of(queries_table))


@pytest.fixture(scope="session")
def cal(x: np.ndarray) -> Any:
    import embquant

    return embquant.calibrate(x)


@pytest.fixture(scope="session")
def cal_json(cal: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cal") / "calibration.json"
    path.write_text(cal.to_json())
    return path


@pytest.fixture(scope="session")
def cli_quantized(cli: Cli, cal_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The slice quantized by the CLI with every scheme and the session calibration."""
    out = tmp_path_factory.mktemp("cliq") / "q.parquet"
    cli.quantize(SLICE, out, ",".join(SCHEMES), cal_json)
    return out


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
