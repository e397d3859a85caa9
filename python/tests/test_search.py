"""Corpus / search / recall against `embquant search` and `embquant recall`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import QUERIES, SLICE, Cli, load_json

import embquant
from embquant import Corpus

CHAINS = ["binary:8,int8:2,float", "rabitq:4,int8"]
COLUMNS = ["query_id", "rank", "id", "score", "tier"]


def normalized(t: pa.Table) -> dict[str, list[Any]]:
    t = t.select(COLUMNS).sort_by([("query_id", "ascending"), ("rank", "ascending")])
    return {c: t[c].to_pylist() for c in COLUMNS}


def assert_same_hits(a: pa.Table, b: pa.Table) -> None:
    x, y = normalized(a), normalized(b)
    for c in ("query_id", "rank", "id", "tier"):
        assert x[c] == y[c], c
    assert np.array_equal(np.asarray(x["score"], np.float32), np.asarray(y["score"], np.float32))


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory, cal: Any) -> Path:
    out = tmp_path_factory.mktemp("search") / "q.parquet"
    embquant.quantize_parquet(
        SLICE, out, schemes="int8,binary,rabitq", calibration=cal, progress=False
    )
    return out


@pytest.mark.parametrize("tiers", CHAINS)
def test_result_shape(quantized: Path, q: np.ndarray, tiers: str) -> None:
    corpus = Corpus.load(quantized, id_column="id", tiers=tiers)
    assert corpus.rows == 5000 and corpus.dim == 384
    hits = corpus.search(q, k=10, tiers=tiers)
    assert hits.column_names == COLUMNS
    assert hits.schema.field("query_id").type == pa.int64()
    assert hits.schema.field("rank").type == pa.uint32()
    assert hits.schema.field("id").type == pa.int64()
    assert hits.schema.field("score").type == pa.float32()
    assert hits.num_rows == 50 * 10
    assert hits["rank"].to_pylist()[:10] == list(range(1, 11))  # rank from 1, as the CLI


@pytest.mark.parametrize("tiers", CHAINS)
def test_from_vectors_equals_load(
    quantized: Path, x: np.ndarray, ids: np.ndarray, q: np.ndarray, cal: Any, tiers: str
) -> None:
    loaded = Corpus.load([quantized], id_column="id", tiers=tiers).search(q, 10, tiers=tiers)
    built = Corpus.from_vectors(x, cal, schemes="int8,binary,rabitq", ids=ids)
    assert_same_hits(built.search(q, 10, tiers=tiers), loaded)


def test_search_function(quantized: Path, q: np.ndarray, queries_table: pa.Table) -> None:
    by_path = embquant.search(quantized, QUERIES, 10, id_column="id", query_id_column="id")
    corpus = Corpus.load(quantized, id_column="id")
    in_memory = embquant.search(corpus, q, 10, query_ids=queries_table["id"].to_numpy())
    assert_same_hits(by_path, in_memory)


def test_exact_top1_is_the_query_itself(x: np.ndarray, cal: Any) -> None:
    corpus = Corpus.from_vectors(x, cal)
    hits = corpus.search(x[:20], k=1)
    assert hits["id"].to_pylist() == list(range(20))


def test_bad_k(quantized: Path, q: np.ndarray) -> None:
    corpus = Corpus.load(quantized)
    with pytest.raises(ValueError):
        corpus.search(q, k=0)
    # k beyond the corpus is refused with the largest k it can answer (as `embquant
    # search` and SQL tiered_search do), never cut to the corpus; k = rows answers.
    with pytest.raises(ValueError, match="ask for at most 5000"):
        corpus.search(q[:1], k=5001)
    hits = corpus.search(q[:1], k=5000)
    assert hits.num_rows == 5000
    assert hits["rank"].to_pylist() == list(range(1, 5001))


@pytest.mark.cli
@pytest.mark.parametrize("tiers", CHAINS)
def test_equals_embquant_search(
    cli: Cli,
    cli_quantized: Path,
    q: np.ndarray,
    queries_table: pa.Table,
    tiers: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "hits.parquet"
    cli.run(
        "search", "--corpus", cli_quantized, "--queries", QUERIES, "--k", 10, "--tiers", tiers,
        "--id-column", "id", "--query-id-column", "id", "-o", out,
    )  # fmt: skip
    theirs = pq.read_table(out)
    corpus = Corpus.load(cli_quantized, id_column="id", tiers=tiers)
    mine = corpus.search(q, 10, tiers=tiers, query_ids=queries_table["id"])
    assert_same_hits(mine, theirs)


# --- recall -------------------------------------------------------------------------------

RECALL_KEYS = {"version", "corpus_rows", "dim", "queries", "ks", "ground_truth", "configs"}


def test_recall_report(tmp_path: Path) -> None:
    report = tmp_path / "report"
    r = embquant.recall(
        SLICE, sample_queries=50, k=[10], configs="binary:4,int8;int8", report=report
    )
    assert RECALL_KEYS <= set(r), set(r)
    assert r["corpus_rows"] == 5000 and r["dim"] == 384 and r["ks"] == [10]
    assert [c["config"] for c in r["configs"]] == ["binary:4,int8", "int8"]
    for c in r["configs"]:
        assert 0.5 < recall_at(c, 10) <= 1.0
    for name in ("report.json", "report.md", "recall.svg", "ground_truth.parquet"):
        assert (report / name).is_file(), name
    assert load_json(report / "report.json")["configs"] == r["configs"]


def test_recall_in_memory_equals_files(x: np.ndarray, q: np.ndarray) -> None:
    a = embquant.recall(x, q, k=10, configs="binary:4,int8;int8")
    b = embquant.recall(SLICE, QUERIES, k=10, configs="binary:4,int8;int8")
    assert strip_times(a)["configs"] == strip_times(b)["configs"]


def recall_at(config: dict[str, Any], k: int) -> float:
    """recall@k of a report configuration (``recall`` keyed by k, or a list with ``k``)."""
    rec = config["recall"]
    if isinstance(rec, dict):
        entry = rec.get(str(k), rec.get(k))  # type: ignore[call-overload]
    else:
        entry = next(e for e in rec if e.get("k") == k)
    assert entry is not None, f"no recall@{k} in {rec}"
    return float(entry["mean"])


def test_recall_gates_do_not_raise() -> None:
    r = embquant.recall(
        SLICE, sample_queries=20, k=10, configs="binary", min_recall="binary=0.999@10"
    )
    assert r["gates"] and r["gates"][0]["passed"] is False


def strip_times(doc: Any) -> Any:
    """The report without its timings (seconds, queries_per_s) and cache flag."""
    if isinstance(doc, dict):
        return {
            k: strip_times(v)
            for k, v in doc.items()
            if "second" not in k and not k.endswith("per_s") and k != "cached"
        }
    if isinstance(doc, list):
        return [strip_times(v) for v in doc]
    return doc


@pytest.mark.cli
def test_recall_equals_the_cli(cli: Cli, tmp_path: Path) -> None:
    configs = "binary:4,int8;int8"
    cli.run(
        "recall", "--corpus", SLICE, "--sample-queries", 50, "--configs", configs,
        "--k", 10, "--report", tmp_path / "cli",
    )  # fmt: skip
    theirs = load_json(tmp_path / "cli" / "report.json")
    mine = embquant.recall(SLICE, sample_queries=50, configs=configs, k=10, report=tmp_path / "py")
    assert strip_times(mine) == strip_times(theirs)


def test_from_vectors_default_chain_is_coarse_to_fine(x: np.ndarray, cal: Any) -> None:
    corpus = Corpus.from_vectors(x, cal, schemes="int8,binary")
    assert corpus.tiers == "binary:8,int8:2,float"
    assert Corpus.from_vectors(x, cal, schemes="int8", keep_float=False).tiers == "int8"
    rq = Corpus.from_vectors(x, cal, schemes="int8,rabitq,binary", keep_float=False)
    assert rq.tiers == "binary:8,rabitq:2,int8"
    # The default chain is the one search() runs.
    q = x[:5]
    assert corpus.search(q, 10).equals(corpus.search(q, 10, tiers="binary:8,int8:2,float"))


def test_from_vectors_multi_bit_rabitq(x: np.ndarray, q: np.ndarray, cal: Any) -> None:
    # `rabitq4` through the quantize spec: both columns, searched as the rabitq4 tier.
    corpus = Corpus.from_vectors(x, cal, schemes="rabitq4")
    assert corpus.tiers == "rabitq4:8,float"
    hits = corpus.search(q[:5], 10)
    assert len(hits) == 50
