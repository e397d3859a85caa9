"""embquant.datafusion: the version guard, and the SQL functions against `embquant sql`."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import QUERIES, SLICE, Cli

import embquant
import embquant.datafusion as edf

datafusion = pytest.importorskip("datafusion")


# --- the version guard (no datafusion call is made) ---------------------------------------


@pytest.mark.parametrize("version", ["54.1.0", "56.0.0", "5.0.0", "garbage"])
def test_guard_refuses_another_major(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version)
    with pytest.raises(RuntimeError) as e:
        edf.check_datafusion_version()
    message = str(e.value)
    assert version in message and "crash" in message
    assert 'pip install "datafusion>=55,<56"' in message


def test_guard_passes_the_same_major(monkeypatch: pytest.MonkeyPatch) -> None:
    assert edf.DATAFUSION_MAJOR == 55
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "55.0.0")
    edf.check_datafusion_version()
    edf.check_datafusion_version("55.2.1")


def test_guard_without_datafusion(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(ImportError, match="datafusion>=55,<56"):
        edf.check_datafusion_version()


def test_register_checks_before_registering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "54.1.0")

    class Recorder:
        calls: list[str] = []

        def __getattr__(self, name: str) -> Any:
            self.calls.append(name)
            return lambda *a, **k: None

    ctx = Recorder()
    with pytest.raises(RuntimeError):
        edf.register(ctx)  # type: ignore[arg-type]
    assert ctx.calls == []


def test_installed_version_passes() -> None:
    edf.check_datafusion_version()


# --- SQL ----------------------------------------------------------------------------------


@pytest.fixture()
def ctx() -> Any:
    c = datafusion.SessionContext()
    names = edf.register(c)
    for name in ("int8_quantize", "binary_quantize", "hamming_distance", "embedding_calibration"):
        assert name in names
    assert "tiered_search" in names
    edf.register_parquet(c, "corpus", SLICE)
    edf.register_parquet(c, "queries", QUERIES)
    return c


def sql_int8(cal: Any) -> str:
    return f"SELECT id, int8_quantize(embedding, '{cal.to_json()}') AS q FROM corpus ORDER BY id"


SQL_BINARY = "SELECT id, binary_quantize(embedding) AS b FROM corpus ORDER BY id"
SQL_HAMMING = (
    "SELECT q.id AS qid, c.id AS id, "
    "hamming_distance(binary_quantize(c.embedding), binary_quantize(q.embedding)) AS d "
    "FROM corpus c CROSS JOIN (SELECT id, embedding FROM queries WHERE id < 3) q "
    "ORDER BY qid, id"
)
SQL_CALIBRATION = "SELECT embedding_calibration(embedding) AS cal FROM corpus"
SQL_TIERED = (
    "SELECT * FROM tiered_search('corpus_q', 'queries', 10, '{tiers}') ORDER BY query_id, rank"
)


def list_values(column: Any) -> np.ndarray:
    a = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return a.flatten().to_numpy(zero_copy_only=False).reshape(len(a), -1)


def test_int8_quantize(ctx: Any, x: np.ndarray, cal: Any) -> None:
    t = ctx.sql(sql_int8(cal)).to_arrow_table()
    want = embquant.quantize(x, "int8", cal, output="numpy")
    assert np.array_equal(list_values(t["q"]), want)


def test_binary_quantize_and_hamming(ctx: Any, x: np.ndarray, q: np.ndarray) -> None:
    t = ctx.sql(SQL_BINARY).to_arrow_table()
    bits = t["b"].combine_chunks()
    assert bits.equals(embquant.quantize(x, "binary", output="array"))
    h = ctx.sql(SQL_HAMMING).to_arrow_table()
    xb, qb = np.packbits(x > 0, axis=1), np.packbits(q[:3] > 0, axis=1)
    want = np.unpackbits(qb[:, None, :] ^ xb[None, :, :], axis=2).sum(2).reshape(-1)
    assert np.array_equal(h["d"].to_numpy(), want)


def test_embedding_calibration(ctx: Any, cal: Any) -> None:
    t = ctx.sql(SQL_CALIBRATION).to_arrow_table()
    got = embquant.Calibration.from_json(t["cal"][0].as_py())
    assert got.lo == cal.lo and got.hi == cal.hi and got.rows == 5000


@pytest.fixture()
def quantized(tmp_path: Path, cal: Any) -> Path:
    out = tmp_path / "q.parquet"
    embquant.quantize_parquet(
        SLICE, out, schemes="int8,binary,rabitq", calibration=cal, progress=False
    )
    return out


@pytest.mark.parametrize("tiers", ["binary:8,int8:2,float", "rabitq:4,int8"])
def test_tiered_search_equals_the_library(
    ctx: Any, quantized: Path, q: np.ndarray, queries_table: pa.Table, tiers: str
) -> None:
    edf.register_parquet(ctx, "corpus_q", quantized)
    t = ctx.sql(SQL_TIERED.format(tiers=tiers)).to_arrow_table()
    corpus = embquant.Corpus.load(quantized, id_column="id", tiers=tiers)
    want = corpus.search(q, 10, tiers=tiers, query_ids=queries_table["id"])
    for c in ("query_id", "rank", "id", "tier"):
        assert t[c].to_pylist() == want[c].to_pylist(), c
    assert np.array_equal(t["score"].to_numpy(), want["score"].to_numpy())


# --- the same SQL in `embquant sql` -------------------------------------------------------


@pytest.mark.cli
def test_same_results_as_embquant_sql(
    cli: Cli, ctx: Any, cal: Any, tmp_path: Path, quantized: Path
) -> None:
    tables = {"corpus": SLICE, "queries": QUERIES}
    for i, query in enumerate([sql_int8(cal), SQL_BINARY, SQL_HAMMING]):
        theirs = cli.sql(query, tmp_path / f"r{i}.parquet", **tables)
        mine = ctx.sql(query).to_arrow_table()
        assert mine.column_names == theirs.column_names
        for name in mine.column_names:
            a, b = mine[name].combine_chunks(), theirs[name].combine_chunks()
            if pa.types.is_fixed_size_list(a.type):
                assert np.array_equal(list_values(a), list_values(b)), name
            else:
                assert a.to_pylist() == b.to_pylist(), name
    theirs = cli.sql(SQL_CALIBRATION, tmp_path / "cal.parquet", **tables)
    mine = ctx.sql(SQL_CALIBRATION).to_arrow_table()
    a = embquant.Calibration.from_json(mine["cal"][0].as_py())
    b = embquant.Calibration.from_json(theirs["cal"][0].as_py())
    assert (a.lo, a.hi, a.min, a.max, a.rows) == (b.lo, b.hi, b.min, b.max, b.rows)


@pytest.mark.cli
@pytest.mark.parametrize("tiers", ["binary:8,int8:2,float", "rabitq:4,int8"])
def test_tiered_search_equals_embquant_search_and_sql(
    cli: Cli, ctx: Any, quantized: Path, tmp_path: Path, tiers: str
) -> None:
    edf.register_parquet(ctx, "corpus_q", quantized)
    mine = ctx.sql(SQL_TIERED.format(tiers=tiers)).to_arrow_table()
    out = tmp_path / "hits.parquet"
    cli.run(
        "search", "--corpus", quantized, "--queries", QUERIES, "--k", 10, "--tiers", tiers,
        "--id-column", "id", "--query-id-column", "id", "-o", out,
    )  # fmt: skip
    searched = pq.read_table(out).sort_by([("query_id", "ascending"), ("rank", "ascending")])
    in_sql = cli.sql(
        SQL_TIERED.format(tiers=tiers),
        tmp_path / "sql.parquet",
        corpus_q=quantized,
        queries=QUERIES,
    )
    for theirs in (searched, in_sql):
        for c in ("query_id", "rank", "id", "tier"):
            assert mine[c].to_pylist() == theirs[c].to_pylist(), c
        assert np.array_equal(mine["score"].to_numpy(), theirs["score"].to_numpy())
