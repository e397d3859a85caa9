//! Dense float vectors straight from Parquet's column reader.
//!
//! Arrow's reader turns a `FixedSizeList<Float32, D>` column into an Arrow array through its
//! list machinery: repetition and definition levels per value, a validity bitmap built per
//! batch, and copies between buffers. On 1M x 384 that is most of the time a full scan
//! takes. When no row of a file can be null or short, none of that is needed: the values
//! of consecutive rows are consecutive in the leaf column, so this module decodes them with
//! Parquet's typed column reader straight into the caller's row-major buffer.
//!
//! A file qualifies ([`DenseColumn::of`]) when the column is a `FixedSizeList<Float32, D>`
//! stored as one `FLOAT` leaf under one list level, and every row group's statistics say the
//! leaf has no nulls (so no null rows, no empty lists and no null items). Anything else is
//! read through Arrow as before. The layout the statistics promise is still checked as the
//! values stream past: a row that does not hold exactly `D` values is an error naming file,
//! column and row, never a shifted vector.

use std::sync::Arc;

use arrow_schema::DataType;
use parquet::column::reader::get_typed_column_reader;
use parquet::data_type::FloatType;
use parquet::file::properties::ReaderProperties;
use parquet::file::reader::RowGroupReader;
use parquet::file::serialized_reader::SerializedRowGroupReader;

use super::input::InputFile;
use crate::error::{Error, Result};

/// A float vector column of one file that can be read densely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseColumn {
    /// The leaf column's index in the Parquet schema.
    pub leaf: usize,
    /// Values per row.
    pub dim: usize,
}

impl DenseColumn {
    /// `column` of `file` when it qualifies (see the module docs), None otherwise.
    pub fn of(file: &InputFile, column: &str) -> Result<Option<DenseColumn>> {
        let builder = file.reader()?;
        let dim = match builder
            .schema()
            .field_with_name(column)
            .map(|f| f.data_type())
        {
            Ok(DataType::FixedSizeList(item, d)) if *item.data_type() == DataType::Float32 => {
                *d as usize
            }
            _ => return Ok(None),
        };
        let meta = builder.metadata();
        let schema = meta.file_metadata().schema_descr();
        let leaves: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| schema.column(i).path().parts()[0] == column)
            .collect();
        let [leaf] = leaves[..] else {
            return Ok(None);
        };
        let descr = schema.column(leaf);
        if dim == 0
            || descr.physical_type() != parquet::basic::Type::FLOAT
            || descr.max_rep_level() != 1
        {
            return Ok(None);
        }
        let no_nulls = meta.row_groups().iter().all(|rg| {
            rg.column(leaf)
                .statistics()
                .and_then(|s| s.null_count_opt())
                == Some(0)
        });
        Ok(no_nulls.then_some(DenseColumn { leaf, dim }))
    }
}

/// Reads the rows of `column` (a [`DenseColumn`] of `file`) in order, appending their values
/// to `buf` and calling `full(buf)` whenever it holds `block_rows` rows; `full` takes the
/// block and leaves `buf` empty (or holding what it did not take). Rows left over at the end
/// stay in `buf`. Errors name the row within the file.
pub fn read_dense(
    file: &InputFile,
    column: DenseColumn,
    block_rows: usize,
    buf: &mut Vec<f32>,
    full: &mut dyn FnMut(&mut Vec<f32>) -> Result<()>,
) -> Result<()> {
    let dim = column.dim;
    let block_rows = block_rows.max(1);
    let builder = file.reader()?;
    let meta = builder.metadata().clone();
    let bytes = Arc::new(file.open()?);
    let props = Arc::new(ReaderProperties::builder().build());
    let (mut def, mut rep) = (Vec::new(), Vec::new());
    let mut first_row = 0usize;
    for (g, rg) in meta.row_groups().iter().enumerate() {
        let decode = |e: parquet::errors::ParquetError, row: usize| Error::Decode {
            row_group: g,
            row: row as u64,
            cause: e.to_string(),
        };
        let reader = SerializedRowGroupReader::new(bytes.clone(), rg, None, props.clone())
            .map_err(|e| decode(e, first_row))?;
        let mut values = get_typed_column_reader::<FloatType>(
            reader
                .get_column_reader(column.leaf)
                .map_err(|e| decode(e, first_row))?,
        );
        let rows = rg.num_rows() as usize;
        let mut done = 0usize;
        while done < rows {
            let held = buf.len() / dim;
            let want = (block_rows - held).min(rows - done);
            def.clear();
            rep.clear();
            let before = buf.len();
            let (records, read, levels) = values
                .read_records(want, Some(&mut def), Some(&mut rep), buf)
                .map_err(|e| decode(e, first_row + done))?;
            let row = first_row + done;
            if records == 0 {
                return Err(Error::Decode {
                    row_group: g,
                    row: row as u64,
                    cause: format!(
                        "the column chunk ended after {done} of the row group's {rows} rows"
                    ),
                });
            }
            // The statistics promised no nulls: every level carries a value. Every row holds
            // `dim` of them (checked below from the repetition levels).
            if read != levels || buf.len() - before != read {
                let top = def.iter().copied().max().unwrap_or(0);
                let at = def.iter().position(|&d| d < top).unwrap_or(0);
                return Err(Error::NullItem {
                    row: row + at / dim,
                    dim: at % dim,
                });
            }
            if let Some(bad) = ragged(&rep, levels, dim) {
                return Err(Error::RaggedList {
                    row: row + bad.0,
                    found: bad.1,
                    expected: dim,
                });
            }
            done += records;
            if buf.len() == block_rows * dim {
                full(buf)?;
            }
        }
        first_row += rows;
    }
    Ok(())
}

/// The first row (within `rep`, the repetition levels of whole rows) that does not hold
/// exactly `dim` values, and its length; None when every row does.
fn ragged(rep: &[i16], levels: usize, dim: usize) -> Option<(usize, usize)> {
    // Branch-free per row, so the check vectorizes: level 0 first, no 0 after it.
    let fits = levels.is_multiple_of(dim)
        && rep.len() == levels
        && rep
            .chunks_exact(dim)
            .all(|c| c[0] == 0 && c[1..].iter().map(|&r| (r == 0) as u32).sum::<u32>() == 0);
    if fits {
        return None;
    }
    let starts: Vec<usize> = (0..rep.len()).filter(|&i| rep[i] == 0).collect();
    starts.iter().enumerate().find_map(|(row, &s)| {
        let len = starts.get(row + 1).copied().unwrap_or(rep.len()) - s;
        (len != dim).then_some((row, len))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
    use arrow_array::{ArrayRef, RecordBatch};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;
    use crate::io::discover;

    /// Writes `rows` vectors of `dim` (row r, dimension d holds `r * 1000 + d`), row `null`
    /// null when given, in row groups of `group` rows and pages of `page` rows.
    fn write(
        path: &std::path::Path,
        rows: usize,
        dim: usize,
        null: Option<usize>,
        group: usize,
        page: usize,
    ) {
        let mut b = FixedSizeListBuilder::new(Float32Builder::new(), dim as i32);
        for r in 0..rows {
            for d in 0..dim {
                b.values().append_value((r * 1000 + d) as f32);
            }
            b.append(Some(r) != null);
        }
        let arr: ArrayRef = Arc::new(b.finish());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "emb",
            arr.data_type().clone(),
            true,
        )]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .set_data_page_row_count_limit(page)
            .set_write_batch_size(page)
            .build();
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(path).unwrap(),
            schema.clone(),
            Some(props),
        )
        .unwrap();
        w.write(&RecordBatch::try_new(schema, vec![arr]).unwrap())
            .unwrap();
        w.close().unwrap();
    }

    fn read_all(file: &InputFile, col: DenseColumn, block: usize) -> Result<Vec<Vec<f32>>> {
        let mut blocks = Vec::new();
        let mut buf = Vec::new();
        read_dense(file, col, block, &mut buf, &mut |b| {
            blocks.push(std::mem::take(b));
            Ok(())
        })?;
        if !buf.is_empty() {
            blocks.push(buf);
        }
        Ok(blocks)
    }

    #[test]
    fn equals_the_arrow_read_across_row_groups_pages_and_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.parquet");
        let (rows, dim) = (1000, 7);
        write(&path, rows, dim, None, 300, 64);
        let file = discover(&[path.to_str().unwrap().to_string()])
            .unwrap()
            .remove(0);
        let col = DenseColumn::of(&file, "emb").unwrap().expect("qualifies");
        assert_eq!(col.dim, dim);
        for block in [1, 64, 77, 300, 4096] {
            let blocks = read_all(&file, col, block).unwrap();
            assert!(blocks[..blocks.len() - 1]
                .iter()
                .all(|b| b.len() == block * dim));
            let all: Vec<f32> = blocks.concat();
            let want: Vec<f32> = (0..rows)
                .flat_map(|r| (0..dim).map(move |d| (r * 1000 + d) as f32))
                .collect();
            assert_eq!(all, want, "block {block}");
        }
    }

    #[test]
    fn finds_the_first_ragged_row() {
        let rows = |lens: &[usize]| -> Vec<i16> {
            lens.iter()
                .flat_map(|&n| (0..n).map(|i| (i > 0) as i16))
                .collect()
        };
        let r = rows(&[3, 3, 3]);
        assert_eq!(ragged(&r, r.len(), 3), None);
        let r = rows(&[3, 2, 4]);
        assert_eq!(ragged(&r, r.len(), 3), Some((1, 2)));
        let r = rows(&[3, 3, 4, 2]);
        assert_eq!(ragged(&r, r.len(), 3), Some((2, 4)));
        let r = rows(&[3, 3, 1]);
        assert_eq!(ragged(&r, r.len(), 3), Some((2, 1)));
    }

    #[test]
    fn a_null_row_or_another_type_is_left_to_arrow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.parquet");
        write(&path, 100, 4, Some(57), 1000, 1000);
        let file = discover(&[path.to_str().unwrap().to_string()])
            .unwrap()
            .remove(0);
        assert_eq!(DenseColumn::of(&file, "emb").unwrap(), None);
        assert_eq!(DenseColumn::of(&file, "other").unwrap(), None);
    }
}
