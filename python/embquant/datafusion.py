"""embquant's SQL functions for datafusion-python (DataFusion 55).

:func:`register` adds to a ``datafusion.SessionContext`` every scalar function
(``int8_quantize``, ``binary_quantize``, ``hamming_distance``, ``int8_inner_product``,
``rabitq_quantize``, ...), the aggregate ``embedding_calibration`` and the table function
``tiered_search`` — the functions ``embquant sql`` runs (see the README's SQL section).

The functions cross the DataFusion FFI, whose layout changes between DataFusion major
versions: they work only with the datafusion-python major the extension was built against
(:data:`DATAFUSION_MAJOR`). :func:`register` checks it first; a mismatch would crash the
interpreter, so it raises instead.

Examples
--------
>>> import datafusion, embquant.datafusion
>>> ctx = datafusion.SessionContext()
>>> names = embquant.datafusion.register(ctx)
>>> "int8_quantize" in names and "tiered_search" in names
True
>>> ctx.sql("SELECT hamming_distance(binary_quantize([1.0, -1.0]), "
...         "binary_quantize([1.0, 1.0])) AS d").to_pydict()
{'d': [1]}
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from typing import TYPE_CHECKING, Any

from . import _embquant as _native

if TYPE_CHECKING:
    import datafusion as _df

__all__ = [
    "DATAFUSION_MAJOR",
    "check_datafusion_version",
    "register",
    "register_parquet",
    "session_context",
]

logger = logging.getLogger("embquant")

#: The datafusion-python major version the extension's FFI types were built against.
DATAFUSION_MAJOR: int = int(_native.datafusion_major)


def check_datafusion_version(version: str | None = None) -> None:
    """Refuses a datafusion-python whose major version differs from the extension's.

    Parameters
    ----------
    version
        The version to check; by default the installed ``datafusion`` distribution's
        (``importlib.metadata.version("datafusion")``).

    Raises
    ------
    ImportError
        datafusion-python is not installed.
    RuntimeError
        Its major version is not :data:`DATAFUSION_MAJOR`.

    Examples
    --------
    >>> from embquant.datafusion import check_datafusion_version, DATAFUSION_MAJOR
    >>> check_datafusion_version(f"{DATAFUSION_MAJOR}.0.0")
    >>> check_datafusion_version("54.1.0")
    Traceback (most recent call last):
    ...
    RuntimeError: datafusion 54.1.0 is installed, but embquant's SQL functions were built ...
    """
    want = DATAFUSION_MAJOR
    install = f'pip install "datafusion>={want},<{want + 1}"'
    if version is None:
        try:
            version = importlib.metadata.version("datafusion")
        except importlib.metadata.PackageNotFoundError as e:
            raise ImportError(
                f"embquant.datafusion needs datafusion-python {want}: {install}"
            ) from e
    head = version.strip().split(".")[0]
    major = int(head) if head.isdigit() else None
    if major != want:
        raise RuntimeError(
            f"datafusion {version} is installed, but embquant's SQL functions were built "
            f"against DataFusion {want}. The FFI layout of functions and tables differs "
            "between DataFusion major versions, and registering them in another major would "
            f"crash the Python interpreter. Install the matching version: {install}"
        )


def register(ctx: _df.SessionContext, *, keep_parquet_metadata: bool = True) -> list[str]:
    """Registers every embquant SQL function into a datafusion-python session.

    Parameters
    ----------
    ctx
        A ``datafusion.SessionContext``.
    keep_parquet_metadata
        Also run ``SET datafusion.execution.parquet.skip_metadata = false``, so tables
        created in SQL (``CREATE EXTERNAL TABLE``) keep their Parquet field metadata: the
        functions read the calibration (``embquant.calibration``) and ``tiered_search``
        the codes' recipes from it. ``ctx.register_parquet`` has its own option, which
        defaults to dropping the metadata: register quantized files with
        :func:`register_parquet` (or ``ctx.register_parquet(..., skip_metadata=False)``).

    Returns
    -------
    list of str
        The registered function names (scalar, aggregate, then ``tiered_search``).

    Raises
    ------
    RuntimeError
        The installed datafusion-python has another major version (see
        :func:`check_datafusion_version`); nothing is registered.
    """
    check_datafusion_version()
    import datafusion
    from datafusion.user_defined import TableFunction

    names: list[str] = []
    for scalar in _native.scalar_udfs():
        ctx.register_udf(datafusion.ScalarUDF.from_pycapsule(scalar))
        names.append(scalar.name)
    for aggregate in _native.aggregate_udfs():
        ctx.register_udaf(datafusion.AggregateUDF.from_pycapsule(aggregate))
        names.append(aggregate.name)
    for table in _native.table_functions():
        # TableFunction(name, exportable): the FFI path (datafusion.udtf would treat a
        # callable object as a Python function).
        exportable: Any = table
        ctx.register_udtf(TableFunction(table.name, exportable))
        names.append(table.name)
    if keep_parquet_metadata:
        ctx.sql("SET datafusion.execution.parquet.skip_metadata = false")
    logger.debug("registered %d embquant SQL functions", len(names))
    return names


def session_context(config: Any = None) -> _df.SessionContext:
    """A new ``datafusion.SessionContext`` that keeps Parquet field metadata, with every
    embquant function registered.

    Parameters
    ----------
    config
        A ``datafusion.SessionConfig`` to start from (default: a new one).

    Examples
    --------
    >>> import embquant.datafusion
    >>> ctx = embquant.datafusion.session_context()
    >>> embquant.datafusion.register_parquet(ctx, "corpus", "tests/data/minilm-wordnet-5k.parquet")
    >>> ctx.sql("SELECT count(*) AS n FROM corpus").to_pydict()
    {'n': [5000]}
    """
    check_datafusion_version()
    import datafusion

    config = datafusion.SessionConfig() if config is None else config
    config = config.set("datafusion.execution.parquet.skip_metadata", "false")
    ctx = datafusion.SessionContext(config)
    register(ctx)
    return ctx


def register_parquet(ctx: _df.SessionContext, name: str, path: str | os.PathLike[str]) -> None:
    """Registers a Parquet file or directory as a table, keeping its field metadata.

    ``ctx.register_parquet(name, path, skip_metadata=False)``: the embquant functions read
    the calibration and the recipes of code columns from the field metadata, which
    datafusion-python drops by default.

    Examples
    --------
    >>> import datafusion, embquant.datafusion
    >>> ctx = datafusion.SessionContext()
    >>> _ = embquant.datafusion.register(ctx)
    >>> embquant.datafusion.register_parquet(ctx, "corpus", "tests/data/minilm-wordnet-5k.parquet")
    """
    ctx.register_parquet(name, os.fspath(path), skip_metadata=False)
