//! Reading inputs in segments (row groups, or parts of large ones) and sampling rows.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::arrow::ProjectionMask;

use super::InputFile;
use crate::error::{Error, Result};
use crate::vectors::vector_column;

/// Row groups at least this large are read as two halves by two threads (the second
/// skips the first half's records, which costs well under half of decoding them), so one
/// huge row group, pyarrow's default, still decodes on both cores.
pub(super) const SPLIT_ROWS: u64 = 262_144;

/// How far (in bytes of encoded batches) a segment may run ahead of the one being written.
pub(super) const READ_AHEAD_BYTES: u64 = 256 << 20;

/// Consecutive row groups smaller than this are read together as one segment, so a file
/// of thousands of tiny row groups costs one reader per ~64Ki rows, not one per group.
pub(super) const MERGE_ROWS: u64 = 65_536;

/// A part of one input read by one thread: rows `skip..skip + take` of the `groups` row
/// groups from `group` (a split segment has one group; merged ones are read whole).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub(crate) file: usize,
    group: usize,
    groups: usize,
    skip: u64,
    take: u64,
    /// First row of the segment within its file.
    first_row: u64,
}

/// The segments of `files`: row groups of `split_rows` rows or more read as two parts.
pub(crate) fn segments(files: &[InputFile], split_rows: u64) -> Vec<Segment> {
    let mut out = Vec::new();
    for (file, f) in files.iter().enumerate() {
        let mut first_row = 0;
        // A run of small row groups being merged: (first group, groups, rows, first row).
        let mut run: Option<(usize, usize, u64, u64)> = None;
        let flush = |run: &mut Option<(usize, usize, u64, u64)>, out: &mut Vec<Segment>| {
            if let Some((group, groups, take, first_row)) = run.take() {
                out.push(Segment {
                    file,
                    group,
                    groups,
                    skip: 0,
                    take,
                    first_row,
                });
            }
        };
        for (group, &n) in f.row_groups.iter().enumerate() {
            if n < MERGE_ROWS {
                match &mut run {
                    Some((_, groups, rows, _)) if *rows + n <= MERGE_ROWS => {
                        *groups += 1;
                        *rows += n;
                    }
                    _ => {
                        flush(&mut run, &mut out);
                        run = Some((group, 1, n, first_row));
                    }
                }
                first_row += n;
                continue;
            }
            flush(&mut run, &mut out);
            // The second reader first skips the first part (about 0.4x the cost of decoding
            // it), so the first part is the larger one and both finish at about the same time.
            let first = n * 5 / 8;
            let halves = if n >= split_rows.max(2) {
                [first, n - first]
            } else {
                [n, 0]
            };
            let mut skip = 0;
            for take in halves.into_iter().filter(|&t| t > 0) {
                out.push(Segment {
                    file,
                    group,
                    groups: 1,
                    skip,
                    take,
                    first_row: first_row + skip,
                });
                skip += take;
            }
            first_row += n;
        }
        flush(&mut run, &mut out);
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
    // The footer parsed by `discover`, once per file (not once per segment).
    let mut builder = file
        .reader()?
        .with_batch_size(batch_size)
        .with_row_groups((seg.group..seg.group + seg.groups).collect());
    let idx = vector_column(builder.schema(), column)?;
    if let Some(expect) = &expect_schema {
        if builder.schema().fields() != expect.fields() {
            return Err(Error::Schema(format!(
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
    if seg.groups == 1 && seg.take < group_rows {
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
    // First row of each row group, to name the group a decoding error is in.
    let group_starts: Vec<u64> = file
        .row_groups
        .iter()
        .scan(0u64, |s, &n| {
            let at = *s;
            *s += n;
            Some(at)
        })
        .collect();
    Ok(reader.map(move |batch| {
        let batch = batch.map_err(|e| Error::Decode {
            row_group: group_starts
                .partition_point(|&s| s <= row)
                .saturating_sub(1),
            row,
            cause: e.to_string(),
        })?;
        let start = row;
        row += batch.num_rows() as u64;
        Ok((start, batch))
    }))
}

/// The one segment fold of calibrate and drift: runs `work` on every segment of `files`
/// on blocking threads, `read.concurrency` at a time, and hands the results to `merge` in
/// file and row order. Errors name the file and `column`.
pub(crate) async fn fold_segments<P, W>(
    files: &[InputFile],
    column: &str,
    read: &super::ReadOptions,
    work: W,
    merge: &mut dyn FnMut(P) -> Result<()>,
) -> Result<()>
where
    P: Send + 'static,
    W: Fn(&InputFile, Segment) -> Result<P> + Send + Sync + 'static,
{
    use futures::StreamExt;
    let files = std::sync::Arc::new(files.to_vec());
    let work = std::sync::Arc::new(work);
    let mut parts = futures::stream::iter(segments(&files, read.split_rows))
        .map(|seg| {
            let (files, work, column) = (files.clone(), work.clone(), column.to_string());
            let task = tokio::task::spawn_blocking(move || {
                let file = &files[seg.file];
                work(file, seg).map_err(|e| e.in_file(file.path.display(), &column))
            });
            async move {
                task.await
                    .map_err(|e| Error::Internal(format!("reader thread: {e}")))?
            }
        })
        .buffered(read.concurrency.max(1));
    while let Some(part) = parts.next().await {
        merge(part?)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(groups: Vec<u64>) -> InputFile {
        InputFile {
            path: "x.parquet".into(),
            store: std::sync::Arc::new(crate::io::LocalStore),
            bytes: 0,
            rows: groups.iter().sum(),
            row_groups: groups,
            footer: None,
        }
    }

    #[test]
    fn tiny_row_groups_merge_and_huge_ones_split() {
        // 10,000 one-row groups: one reader per 64Ki rows, not one per group.
        let s = segments(&[file(vec![1; 10_000])], SPLIT_ROWS);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].group, s[0].groups, s[0].take), (0, 10_000, 10_000));
        // Mixed: small runs merge up to MERGE_ROWS, a large group splits in two halves, and
        // every row is covered once, in order.
        let groups = vec![40_000, 40_000, 300_000, 10, 70_000, 5];
        let s = segments(&[file(groups.clone())], SPLIT_ROWS);
        let mut next = 0;
        for seg in &s {
            assert_eq!(seg.first_row, next, "{s:?}");
            next += seg.take;
        }
        assert_eq!(next, groups.iter().sum::<u64>());
        assert!(s.iter().all(|g| g.groups == 1 || g.take <= MERGE_ROWS));
        assert_eq!(s.iter().filter(|g| g.group == 2).count(), 2, "{s:?}");
    }
}
