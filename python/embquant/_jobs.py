"""The Parquet jobs: calibrate, quantize, inspect, with progress bars (internal module)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import _embquant as _native
from ._arrow import PathLike, paths

logger = logging.getLogger("embquant")

ProgressCallback = Callable[[str, int, int], None]
Progress = bool | ProgressCallback | None


@contextlib.contextmanager
def progress_callback(progress: Progress) -> Iterator[ProgressCallback | None]:
    """The native progress callback for `progress`.

    ``True``: one tqdm bar per phase (``calibrate``, ``quantize``, ...) when tqdm is
    importable, else nothing; ``False`` / ``None``: nothing; a callable is used as it is,
    called as ``progress(phase, done_rows, total_rows)``.
    """
    if callable(progress):
        yield progress
        return
    if not progress:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        logger.debug("tqdm is not installed: no progress bars")
        yield None
        return
    bars: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = tqdm(total=total or None, desc=phase, unit="rows", unit_scale=True)
            bars[phase] = bar
        if total and bar.total != total:
            bar.total = total
        bar.update(max(done - bar.n, 0))

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()


def _calibration_arg(calibration: Any) -> _native.Calibration | None:
    """A Calibration, a path to a calibration JSON, or None."""
    if calibration is None or isinstance(calibration, _native.Calibration):
        return calibration
    if isinstance(calibration, (str, os.PathLike)):
        return _native.Calibration.from_json(Path(calibration).read_text())
    raise TypeError(
        "calibration: expected an embquant.Calibration or the path of a calibration JSON, "
        f"got {type(calibration).__name__}"
    )


def _schemes(schemes: str | Sequence[str]) -> str:
    return schemes if isinstance(schemes, str) else ",".join(schemes)


def calibrate_parquet(
    inputs: PathLike | Sequence[PathLike],
    column: str = "embedding",
    method: str = "minmax",
    *,
    sample_rows: int | None = None,
    seed: int = 42,
    dims: int | None = None,
    batch_rows: int = 1024,
    concurrency: int = 2,
    progress: Progress = True,
) -> _native.Calibration:
    """Calibrates on the float vectors of Parquet files (``embquant calibrate``).

    Parameters
    ----------
    inputs
        Files, directories (every ``*.parquet`` below) or globs; one or a list.
    column
        The float vector column.
    method
        ``"minmax"``, ``"quantile:P"`` (e.g. ``"quantile:0.999"``) or ``"meanstd:K"``,
        optionally followed by ``+symmetric`` and/or ``+per-tensor`` (as the CLI's
        ``--method``).
    sample_rows, seed
        Calibrate on a seeded uniform sample of this many rows instead of all rows.
    dims
        Keep the first `dims` dimensions (Matryoshka), re-normalized, before calibrating.
    batch_rows, concurrency
        Rows per batch, row groups read at once (the CLI's defaults).
    progress
        ``True``: a tqdm bar (if tqdm is installed); a callable
        ``progress(phase, done_rows, total_rows)``; ``False``: nothing.

    Returns
    -------
    Calibration

    Examples
    --------
    >>> import embquant
    >>> cal = embquant.calibrate_parquet("tests/data/minilm-wordnet-5k.parquet", progress=False)
    >>> cal.dim, cal.rows
    (384, 5000)
    """
    with progress_callback(progress) as cb:
        return _native.calibrate_parquet(
            paths(inputs),
            column=column,
            method=method,
            sample_rows=sample_rows,
            seed=seed,
            dims=dims,
            batch_rows=batch_rows,
            concurrency=concurrency,
            progress=cb,
        )


def quantize_parquet(
    inputs: PathLike | Sequence[PathLike],
    output: PathLike,
    column: str = "embedding",
    schemes: str | Sequence[str] = "int8,binary",
    *,
    calibration: _native.Calibration | PathLike | None = None,
    method: str = "minmax",
    sample_rows: int | None = None,
    seed: int = 42,
    binary_threshold: str = "zero",
    dims: int | None = None,
    drop_source: bool = False,
    row_group_rows: int = 65536,
    target_file_rows: int | None = None,
    int8_layout: str = "binary",
    zstd_level: int = 1,
    rabitq_rotation: str = "hadamard",
    rabitq_bits: int | None = None,
    overwrite: bool = False,
    batch_rows: int = 1024,
    concurrency: int = 2,
    progress: Progress = True,
) -> dict[str, Any]:
    """Appends quantized columns to Parquet files (``embquant quantize``).

    Every input column is kept (unless `drop_source`) and ``<column>_int8``, ``_int4``,
    ``_bin``, ``_f16``, ``_bf16``, ``_rq`` are appended, each with its recipe and
    calibration in the field metadata. The output is written under a temporary name beside
    it and renamed into place when complete: after an error or Ctrl-C (``KeyboardInterrupt``)
    nothing is left at `output` (a previous file there is intact). A directory output
    (`target_file_rows`) that holds files embquant did not write is refused unless
    `overwrite`, which keeps them.

    Parameters
    ----------
    inputs
        Files, directories or globs; one or a list.
    output
        The output file, or a directory with `target_file_rows`.
    column
        The float vector column.
    schemes
        Comma-separated (or a list): ``int8``, ``int4``, ``binary``, ``f16``, ``bf16``,
        ``rabitq``, and ``rabitq2`` to ``rabitq8`` (multi-bit RaBitQ, as `rabitq_bits`).
    calibration
        A :class:`Calibration` or the path of a calibration JSON; without it the job
        calibrates first with `method` (two passes over the data).
    method, sample_rows, seed, binary_threshold, dims, drop_source, row_group_rows, \
target_file_rows, int8_layout, zstd_level, rabitq_rotation, rabitq_bits, overwrite, \
batch_rows, concurrency
        As the CLI's options of the same names: one spec (``embquant::job::QuantizeSpec``)
        parsed by the same code for the CLI, the cluster and Python.
    progress
        ``True``: one tqdm bar per phase (calibrate, quantize) if tqdm is installed; a
        callable ``progress(phase, done_rows, total_rows)``; ``False``: nothing.

    Returns
    -------
    dict
        The summary: ``rows``, ``files``, ``bytes_in``, ``bytes_out``, ``columns``,
        ``seconds``.

    Examples
    --------
    >>> import embquant, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "q.parquet")
    >>> summary = embquant.quantize_parquet(
    ...     "tests/data/minilm-wordnet-5k.parquet", out, schemes="int8,binary", progress=False
    ... )
    >>> summary["rows"]
    5000
    """
    with progress_callback(progress) as cb:
        summary = _native.quantize_parquet(
            paths(inputs),
            os.fspath(output),
            column=column,
            schemes=_schemes(schemes),
            calibration=_calibration_arg(calibration),
            method=method,
            sample_rows=sample_rows,
            seed=seed,
            binary_threshold=binary_threshold,
            dims=dims,
            drop_source=drop_source,
            row_group_rows=row_group_rows,
            target_file_rows=target_file_rows,
            int8_layout=int8_layout,
            zstd_level=zstd_level,
            rabitq_rotation=rabitq_rotation,
            rabitq_bits=rabitq_bits,
            overwrite=overwrite,
            batch_rows=batch_rows,
            concurrency=concurrency,
            progress=cb,
        )
    result: dict[str, Any] = json.loads(summary)
    logger.info("quantized %s rows into %s", result.get("rows"), os.fspath(output))
    return result


def inspect(path: PathLike) -> dict[str, Any]:
    """Schema, row groups, recipes, calibration summary and clip rates of a quantized file.

    The ``embquant inspect --json`` document, as a dict.

    Examples
    --------
    >>> import embquant, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "q.parquet")
    >>> _ = embquant.quantize_parquet("tests/data/minilm-wordnet-5k.parquet", out, progress=False)
    >>> info = embquant.inspect(out)
    >>> isinstance(info, dict)
    True
    """
    result: dict[str, Any] = json.loads(_native.inspect(os.fspath(path)))
    return result
