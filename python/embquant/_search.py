"""Tiered search and recall reports (internal module)."""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from . import _embquant as _native
from ._arrow import PathLike, int64_array, is_paths, prepare_vectors
from ._arrow import paths as _paths
from ._jobs import Progress, progress_callback

DEFAULT_TIERS = "binary:8,int8:2,float"


def _results_table(obj: Any) -> pa.Table:
    """The native search result (an object with ``__arrow_c_stream__``) as a pyarrow table."""
    return pa.table(obj)


class Corpus:
    """Quantized vectors held in memory for tiered top-k search.

    Build one from quantized Parquet files (:meth:`load`) or from float vectors
    (:meth:`from_vectors`), then :meth:`search` it with float queries. A tier chain such as
    ``"binary:8,int8:2,float"`` scans every row's binary codes (Hamming distance) and keeps
    ``8 k`` candidates, rescores them with int8 codes and keeps ``2 k``, then ranks those by
    the float dot product.

    Examples
    --------
    >>> import numpy as np, embquant
    >>> x = np.random.default_rng(0).standard_normal((2000, 64), dtype=np.float32)
    >>> corpus = embquant.Corpus.from_vectors(x, embquant.calibrate(x))
    >>> corpus.rows, corpus.dim
    (2000, 64)
    >>> hits = corpus.search(x[:3], k=5)
    >>> hits.column_names
    ['query_id', 'rank', 'id', 'score', 'tier']
    >>> import pyarrow.compute as pc
    >>> hits.filter(pc.equal(hits["rank"], 1))["id"].to_pylist()
    [0, 1, 2]
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Corpus) -> None:
        if not isinstance(native, _native.Corpus):
            raise TypeError("use Corpus.load(...) or Corpus.from_vectors(...)")
        self._native = native

    @classmethod
    def load(
        cls,
        paths: PathLike | Sequence[PathLike],
        column: str = "embedding",
        *,
        id_column: str | None = None,
        tiers: str = DEFAULT_TIERS,
    ) -> Corpus:
        """Loads the codes of quantized Parquet files (written by ``quantize_parquet``).

        Parameters
        ----------
        paths
            Files, directories or globs; one or a list.
        column
            The embedding column (its code columns are ``<column>_bin``, ``_int8``, ...).
        id_column
            Integer id column reported in the results (row numbers when None).
        tiers
            The tier chain(s) the corpus must serve: their codes are loaded; the float tier
            reads only its candidate rows from the files when searching.
        """
        return cls(
            _native.Corpus.load(_paths(paths), column=column, id_column=id_column, tiers=tiers)
        )

    @classmethod
    def from_vectors(
        cls,
        vectors: Any,
        calibration: _native.Calibration | None = None,
        *,
        schemes: str | Sequence[str] = "int8,binary",
        ids: Any = None,
        column: str | None = None,
        keep_float: bool = True,
    ) -> Corpus:
        """Quantizes float vectors in memory into a searchable corpus.

        Parameters
        ----------
        vectors
            Anything :func:`embquant.quantize` accepts.
        calibration
            The calibration of the int8 / int4 codes (calibrated on `vectors` when None).
        schemes
            The code schemes to build (``"int8,binary"``, ``"rabitq,int8"``, ...).
        ids
            Integer ids, one per row (row numbers when None).
        column
            The vector column of a table input.
        keep_float
            Keep the float vectors for a final ``float`` tier.
        """
        schemes = schemes if isinstance(schemes, str) else ",".join(schemes)
        return cls(
            _native.Corpus.from_vectors(
                prepare_vectors(vectors),
                calibration=calibration,
                schemes=schemes,
                ids=int64_array(ids, "ids"),
                column=column,
                keep_float=keep_float,
            )
        )

    @property
    def rows(self) -> int:
        """Number of vectors."""
        return self._native.rows

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._native.dim

    @property
    def tiers(self) -> str:
        """The tier chain the corpus was loaded for and :meth:`search`'s default (built from
        vectors: the schemes coarse to fine, e.g. ``"binary:8,int8:2,float"``)."""
        return self._native.tiers

    def __repr__(self) -> str:
        return f"Corpus(rows={self.rows}, dim={self.dim}, tiers={self.tiers})"

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        tiers: str | None = None,
        query_ids: Any = None,
        column: str | None = None,
    ) -> pa.Table:
        """Top-`k` of each query through a tier chain.

        Parameters
        ----------
        queries
            Float query vectors (anything :func:`embquant.quantize` accepts).
        k
            Results per query (at most the corpus rows).
        tiers
            The tier chain: each tier but the last is ``scheme:factor`` and keeps
            ``k x factor`` candidates (``"binary:8,int8:2,float"``, ``"rabitq:4,int8"``);
            by default the corpus' own (:attr:`tiers`: the chain it was loaded or built
            for).
        query_ids
            Integer ids of the queries (row numbers when None).
        column
            The vector column of a table input.

        Returns
        -------
        pyarrow.Table
            ``(query_id int64, rank uint32, id int64, score float32, tier utf8)``, by
            query then rank; ``tier`` names the tier that scored the row.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        result = self._native.search(
            prepare_vectors(queries),
            k=k,
            tiers=tiers,
            query_ids=int64_array(query_ids, "query_ids"),
            column=column,
        )
        return _results_table(result)


def search(
    corpus: Corpus | PathLike | Sequence[PathLike],
    queries: Any,
    k: int = 10,
    tiers: str = DEFAULT_TIERS,
    *,
    column: str = "embedding",
    id_column: str | None = None,
    query_id_column: str | None = None,
    query_ids: Any = None,
) -> pa.Table:
    """Tiered top-`k` search (``embquant search``).

    Parameters
    ----------
    corpus
        A :class:`Corpus`, or quantized Parquet paths (loaded with `column`, `id_column`).
    queries
        Float query vectors, or the path of a Parquet file holding them in `column` (with
        ids in `query_id_column`).
    k, tiers
        See :meth:`Corpus.search`.

    Returns
    -------
    pyarrow.Table
        ``(query_id, rank, id, score, tier)``.

    Examples
    --------
    >>> import embquant, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "q.parquet")
    >>> _ = embquant.quantize_parquet("tests/data/minilm-wordnet-5k.parquet", out, progress=False)
    >>> hits = embquant.search(out, "tests/data/minilm-wordnet-queries-50.parquet", k=10,
    ...                        id_column="id", query_id_column="id")
    >>> hits.num_rows
    500
    """
    if not isinstance(corpus, Corpus):
        corpus = Corpus.load(corpus, column, id_column=id_column, tiers=tiers)
    query_column: str | None = None
    if isinstance(queries, (str, os.PathLike)):
        wanted = [column] + ([query_id_column] if query_id_column else [])
        table = pq.read_table(os.fspath(queries), columns=wanted)
        if query_id_column:
            query_ids = table[query_id_column]
        queries = table.select([column])
        query_column = column
    elif query_id_column is not None:
        raise ValueError("query_id_column needs queries given as a Parquet path")
    return corpus.search(queries, k, tiers=tiers, query_ids=query_ids, column=query_column)


def recall(
    corpus: Any,
    queries: Any = None,
    *,
    sample_queries: int | None = None,
    column: str = "embedding",
    k: int | Sequence[int] = (1, 10, 100),
    configs: str | Sequence[str] | None = None,
    dims: int | Sequence[int] = (),
    target_recall: str | None = None,
    min_recall: str | Sequence[str] = (),
    calibration_rows: int | None = None,
    method: str = "minmax",
    seed: int = 42,
    code_budget_mb: int = 1024,
    report: PathLike | None = None,
    progress: Progress = False,
    binary_threshold: str = "zero",
    rabitq_rotation: str = "hadamard",
) -> dict[str, Any]:
    """How much recall each quantization configuration keeps (``embquant recall``).

    Computes the exact ground truth, then recall@k of every scheme and tier chain (or of
    `configs`), the recall each tier loses, the cheapest configuration reaching
    `target_recall`, and the `min_recall` gates.

    Parameters
    ----------
    corpus
        Parquet paths (files, directories, globs) or float vectors in memory.
    queries
        Query vectors, or the path of a Parquet file; or None with `sample_queries`.
    sample_queries
        Use this many corpus rows as queries (each excluded from its own results).
    k
        The ks of recall@k.
    configs
        Configurations separated by ``;`` (or a list): ``"binary:4,int8;int8"``;
        ``chain@D`` measures a chain on a D-dimension Matryoshka prefix.
    dims
        Matryoshka prefixes measured with every configuration.
    target_recall
        Recommend the cheapest configuration reaching it, e.g. ``"0.95@10"``.
    min_recall
        Gates, e.g. ``"binary:4,int8=0.95@10"``: a failing gate is reported in
        ``report["gates"]`` with ``passed: False`` (no exception).
    calibration_rows, method, seed, code_budget_mb, binary_threshold, rabitq_rotation
        As the CLI's options of the same names (the last two say how the binary and RaBitQ
        codes measured are made, as :func:`quantize_parquet` takes them).
    report
        A directory: ``report.json``, ``report.md``, ``recall.svg`` and the cached
        ``ground_truth.parquet`` are written into it.
    progress
        As in :func:`quantize_parquet` (off by default).

    Returns
    -------
    dict
        The ``report.json`` document (see the README): ``version``, ``corpus_rows``,
        ``dim``, ``queries``, ``ks``, ``ground_truth``, ``calibration``, ``configs``,
        ``pareto``, ``recommendation``, ``gates``.

    Examples
    --------
    >>> import embquant
    >>> r = embquant.recall("tests/data/minilm-wordnet-5k.parquet", sample_queries=20,
    ...                     k=10, configs="binary:4,int8;int8")
    >>> [c["config"] for c in r["configs"]]
    ['binary:4,int8', 'int8']
    """
    if queries is None and sample_queries is None:
        raise ValueError("recall needs queries or sample_queries")
    corpus_arg = _paths(corpus) if is_paths(corpus) else prepare_vectors(corpus)
    if queries is None or isinstance(queries, (str, os.PathLike)):
        queries_arg = None if queries is None else os.fspath(queries)
    else:
        queries_arg = prepare_vectors(queries)
    ks = [k] if isinstance(k, int) else list(k)
    dims_list = [dims] if isinstance(dims, int) else list(dims)
    gates = [min_recall] if isinstance(min_recall, str) else list(min_recall)
    if configs is not None and not isinstance(configs, str):
        configs = ";".join(configs)
    with progress_callback(progress) as cb:
        result = _native.recall(
            corpus_arg,
            queries=queries_arg,
            sample_queries=sample_queries,
            column=column,
            k=ks,
            configs=configs,
            dims=dims_list,
            target_recall=target_recall,
            min_recall=gates,
            calibration_rows=calibration_rows,
            method=method,
            seed=seed,
            binary_threshold=binary_threshold,
            rabitq_rotation=rabitq_rotation,
            code_budget_mb=code_budget_mb,
            report=None if report is None else os.fspath(report),
            progress=cb,
        )
    out: dict[str, Any] = json.loads(result)
    return out
