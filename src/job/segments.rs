//! Reading inputs in segments (row groups, or parts of large ones) and sampling rows.

use std::fs::File;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::arrow::ProjectionMask;

use super::InputFile;
use crate::error::{Error, Result};
use crate::quantizer::vector_column;

/// Row groups at least this large are read as two halves by two threads (the second
/// skips the first half's records, which costs well under half of decoding them), so one
/// huge row group, pyarrow's default, still decodes on both cores.
pub(super) const SPLIT_ROWS: u64 = 262_144;

/// How far (in bytes of encoded batches) a segment may run ahead of the one being written.
pub(super) const READ_AHEAD_BYTES: u64 = 256 << 20;

/// A part of one input read by one thread: rows `skip..skip + take` of row group `group`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub(crate) file: usize,
    group: usize,
    skip: u64,
    take: u64,
    /// First row of the segment within its file.
    first_row: u64,
}

pub(crate) fn segments(files: &[InputFile]) -> Vec<Segment> {
    let mut out = Vec::new();
    for (file, f) in files.iter().enumerate() {
        let mut first_row = 0;
        for (group, &n) in f.row_groups.iter().enumerate() {
            // The second reader first skips the first part (about 0.4x the cost of decoding
            // it), so the first part is the larger one and both finish at about the same time.
            let first = n * 5 / 8;
            let halves = if n >= SPLIT_ROWS {
                [first, n - first]
            } else {
                [n, 0]
            };
            let mut skip = 0;
            for take in halves.into_iter().filter(|&t| t > 0) {
                out.push(Segment {
                    file,
                    group,
                    skip,
                    take,
                    first_row: first_row + skip,
                });
                skip += take;
            }
            first_row += n;
        }
    }
    out
}

/// Batches of one segment with the file row of each batch's first row.
pub(crate) fn segment_reader(
    file: &InputFile,
    seg: Segment,
    column: &str,
    only_column: bool,
    expect_schema: Option<SchemaRef>,
    batch_size: usize,
) -> Result<impl Iterator<Item = Result<(u64, RecordBatch)>>> {
    let f = File::open(&file.path).map_err(|e| Error::io("opening", e))?;
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(f)?
        .with_batch_size(batch_size)
        .with_row_groups(vec![seg.group]);
    let idx = vector_column(builder.schema(), column)?;
    if let Some(expect) = &expect_schema {
        if builder.schema().fields() != expect.fields() {
            return Err(Error::InvalidOption(format!(
                "its schema differs from the first input's ({} vs {})",
                builder.schema(),
                expect
            )));
        }
    }
    if only_column {
        let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
        builder = builder.with_projection(mask);
    }
    let group_rows = file.row_groups[seg.group];
    if seg.take < group_rows {
        let mut sel = Vec::new();
        if seg.skip > 0 {
            sel.push(RowSelector::skip(seg.skip as usize));
        }
        sel.push(RowSelector::select(seg.take as usize));
        let rest = group_rows - seg.skip - seg.take;
        if rest > 0 {
            sel.push(RowSelector::skip(rest as usize));
        }
        builder = builder.with_row_selection(RowSelection::from(sel));
    }
    let reader = builder.build()?;
    let mut row = seg.first_row;
    Ok(reader.map(move |batch| {
        let batch = batch
            .map_err(|e| Error::InvalidOption(format!("reading rows after row {row}: {e}")))?;
        let start = row;
        row += batch.num_rows() as u64;
        Ok((start, batch))
    }))
}

/// A seeded uniform sample of `n` of `total` row indices (Floyd's algorithm), sorted.
pub fn sample_indices(total: u64, n: u64, seed: u64) -> Vec<u64> {
    let mut state = seed;
    let mut next = move || {
        // SplitMix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let n = n.min(total);
    let mut chosen = std::collections::BTreeSet::new();
    for j in total - n..total {
        let t = next() % (j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}
