"""quantize_parquet / inspect: the CLI's output, atomic writes, progress, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SCHEMES, SLICE, Cli, temp_leftovers

import embquant

ALL = ",".join(SCHEMES)


def test_output_is_readable(tmp_path: Path, cal: Any) -> None:
    out = tmp_path / "q.parquet"
    summary = embquant.quantize_parquet(SLICE, out, schemes=ALL, calibration=cal, progress=False)
    assert summary["rows"] == 5000
    for key in ("files", "bytes_in", "bytes_out", "columns", "seconds"):
        assert key in summary, key
    table = pq.read_table(out)
    assert table.num_rows == 5000
    for name in ("id", "text", "embedding", "embedding_int8", "embedding_bin", "embedding_rq"):
        assert name in table.column_names
    field = table.schema.field("embedding_int8")
    assert field.metadata and b"embquant.calibration" in field.metadata
    assert embquant.Calibration.from_parquet(str(out)) == cal
    info = embquant.inspect(out)
    assert isinstance(info, dict) and info
    assert temp_leftovers(tmp_path) == []


def test_calibration_as_a_json_path(tmp_path: Path, cal: Any, cal_json: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    embquant.quantize_parquet(SLICE, a, calibration=cal, progress=False)
    embquant.quantize_parquet([SLICE], b, calibration=cal_json, progress=False)
    assert pq.read_table(a).equals(pq.read_table(b))


@pytest.mark.cli
def test_same_codes_as_the_cli(cli: Cli, tmp_path: Path, cal: Any, cal_json: Path) -> None:
    mine, theirs = tmp_path / "mine.parquet", tmp_path / "theirs.parquet"
    embquant.quantize_parquet(SLICE, mine, schemes=ALL, calibration=cal, progress=False)
    cli.quantize(SLICE, theirs, ALL, cal_json)
    a, b = pq.read_table(mine), pq.read_table(theirs)
    assert a.schema.names == b.schema.names
    for name in a.schema.names:
        assert a[name].equals(b[name]), name
        assert a.schema.field(name).metadata == b.schema.field(name).metadata, name
    # Without a calibration: both calibrate first (two passes) and agree.
    embquant.quantize_parquet(SLICE, mine, schemes="int8,int4", progress=False)
    cli.run("quantize", SLICE, "--scheme", "int8,int4", "-o", theirs)
    assert pq.read_table(mine).equals(pq.read_table(theirs))


@pytest.mark.cli
def test_multi_bit_rabitq_and_matryoshka_as_the_cli(cli: Cli, tmp_path: Path) -> None:
    # The same spec through both front doors: `rabitq4` (or rabitq_bits=4), a prefix, a sample.
    mine, bits, theirs = (tmp_path / n for n in ("mine.parquet", "bits.parquet", "theirs.parquet"))
    embquant.quantize_parquet(
        SLICE, mine, schemes="int8,rabitq4", dims=128, sample_rows=1000, progress=False
    )
    embquant.quantize_parquet(
        SLICE, bits, schemes="int8,rabitq", rabitq_bits=4, dims=128, sample_rows=1000, progress=False
    )
    cli.run(
        "quantize", SLICE, "--scheme", "int8,rabitq4", "--dims", "128", "--sample-rows", "1000",
        "-o", theirs,
    )
    a, b, c = pq.read_table(mine), pq.read_table(bits), pq.read_table(theirs)
    assert "embedding_rq4" in a.schema.names
    for t in (b, c):
        assert a.schema.names == t.schema.names
        for name in a.schema.names:
            assert a[name].equals(t[name]), name
            assert a.schema.field(name).metadata == t.schema.field(name).metadata, name
    with pytest.raises(ValueError, match="expected rabitq1 to rabitq8"):
        embquant.quantize_parquet(SLICE, tmp_path / "x.parquet", schemes="rabitq04", progress=False)
    with pytest.raises(ValueError, match="zstd_level"):
        embquant.quantize_parquet(SLICE, tmp_path / "x.parquet", zstd_level=99, progress=False)


def write_with_nan(path: Path, x: np.ndarray, row: int) -> None:
    bad = x.copy()
    bad[row, 7] = np.nan
    values = pa.array(bad.reshape(-1))
    pq.write_table(
        pa.table({"embedding": pa.FixedSizeListArray.from_arrays(values, x.shape[1])}), path
    )


def test_failing_job_leaves_nothing(tmp_path: Path, x: np.ndarray, cal: Any) -> None:
    bad = tmp_path / "bad.parquet"
    write_with_nan(bad, x[:2000], 1234)
    out = tmp_path / "out.parquet"
    with pytest.raises(ValueError, match="1234"):
        embquant.quantize_parquet(bad, out, calibration=cal, progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="1234"):
        embquant.quantize_parquet(bad, out, progress=False)  # fails while calibrating
    outdir = tmp_path / "parts"
    with pytest.raises(ValueError, match="1234"):
        embquant.quantize_parquet(
            bad, outdir, calibration=cal, target_file_rows=500, progress=False
        )
    assert not outdir.exists()
    assert temp_leftovers(tmp_path) == []


def test_failing_job_keeps_the_previous_output(tmp_path: Path, x: np.ndarray, cal: Any) -> None:
    out = tmp_path / "out.parquet"
    embquant.quantize_parquet(SLICE, out, calibration=cal, progress=False)
    before = out.read_bytes()
    bad = tmp_path / "bad.parquet"
    write_with_nan(bad, x[:100], 5)
    with pytest.raises(ValueError):
        embquant.quantize_parquet(bad, out, calibration=cal, progress=False)
    assert out.read_bytes() == before
    assert temp_leftovers(tmp_path) == []


def test_directory_with_other_files_is_refused(tmp_path: Path, cal: Any) -> None:
    outdir = tmp_path / "parts"
    outdir.mkdir()
    (outdir / "notes.txt").write_text("mine")
    with pytest.raises((ValueError, OSError), match="notes.txt"):
        embquant.quantize_parquet(
            SLICE, outdir, calibration=cal, target_file_rows=2000, progress=False
        )
    assert sorted(p.name for p in outdir.iterdir()) == ["notes.txt"]
    # overwrite=True keeps the foreign file and writes the parts beside it.
    embquant.quantize_parquet(
        SLICE, outdir, calibration=cal, target_file_rows=2000, overwrite=True, progress=False
    )
    names = sorted(p.name for p in outdir.iterdir())
    assert "notes.txt" in names and "_embquant_manifest.json" in names
    assert sum(n.endswith(".parquet") for n in names) == 3
    assert (outdir / "notes.txt").read_text() == "mine"
    assert temp_leftovers(tmp_path) == []


def test_output_may_not_be_an_input(tmp_path: Path, cal: Any) -> None:
    copy = tmp_path / "in.parquet"
    copy.write_bytes(SLICE.read_bytes())
    with pytest.raises((ValueError, OSError)):
        embquant.quantize_parquet(copy, copy, calibration=cal, progress=False)
    assert copy.read_bytes() == SLICE.read_bytes()


def test_progress_callback(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    embquant.quantize_parquet(
        SLICE, tmp_path / "q.parquet", progress=lambda *a: calls.append(a)  # type: ignore[arg-type]
    )
    phases = {p for p, _, _ in calls}
    assert {"calibrate", "quantize"} <= phases, phases
    for phase in phases:
        done = [d for p, d, _ in calls if p == phase]
        assert done == sorted(done), phase
        assert all(t == 5000 for p, _, t in calls if p == phase)
    assert calls[-1][0] == "quantize" and calls[-1][1] == 5000


def test_progress_bars_with_tqdm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    embquant.quantize_parquet(SLICE, tmp_path / "q.parquet", progress=True)
    err = capsys.readouterr().err
    assert "quantize" in err


@pytest.mark.cli
@pytest.mark.slow
def test_ctrl_c_raises_keyboard_interrupt_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    big = tmp_path / "big.parquet"
    cli.run("gen-synthetic", "--rows", 400_000, "--dims", 384, "-o", big)
    out = tmp_path / "out.parquet"
    script = textwrap.dedent(
        f"""
        import sys, embquant
        started = False
        def progress(phase, done, total):
            global started
            if not started:
                started = True
                print("started", flush=True)
        embquant.quantize_parquet({str(big)!r}, {str(out)!r}, schemes="int8,binary,rabitq",
                                  progress=progress)
        print("finished", flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "started", proc.stderr.read() if proc.stderr else ""
    time.sleep(1.0)
    assert proc.poll() is None, "the job finished within 1 s: make the input larger"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in stderr, stderr
    assert "finished" not in stdout
    assert not out.exists()
    assert temp_leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["big.parquet"]


def test_in_memory_quantize_is_the_jobs_columns(tmp_path: Path, x: np.ndarray, cal: Any) -> None:
    # `quantize` in memory and `quantize_parquet` build the same spec: the same codes and
    # the same recipe and calibration, multi-bit RaBitQ (two columns) and a rotation seed
    # included.
    out = tmp_path / "job.parquet"
    embquant.quantize_parquet(
        SLICE, out, schemes="int8,binary,rabitq4", rabitq_rotation="hadamard:7",
        calibration=cal, progress=False,
    )
    job = pq.read_table(out)
    for scheme, names in (
        ("int8", ["embedding_int8"]),
        ("binary", ["embedding_bin"]),
        ("rabitq4", ["embedding_rq", "embedding_rq4"]),
    ):
        got = embquant.quantize(x, scheme, cal, rabitq_rotation="hadamard:7")
        assert got.schema.names == names, scheme
        for name in names:
            assert got[name].combine_chunks().equals(job[name].combine_chunks()), name
            assert got.schema.field(name).metadata == job.schema.field(name).metadata, name
    # rabitq_bits= says what the scheme's digit says.
    bits = embquant.quantize(x, "rabitq", cal, rabitq_rotation="hadamard:7", rabitq_bits=4)
    assert bits.equals(embquant.quantize(x, "rabitq4", cal, rabitq_rotation="hadamard:7"))
    with pytest.raises(ValueError, match="two columns|2 columns"):
        embquant.quantize(x, "rabitq4", cal, output="numpy")
    with pytest.raises(ValueError, match="expected rabitq1 to rabitq8"):
        embquant.quantize(x, "rabitq9", cal)
