//! Query vectors read batch by batch, with one policy for every front end (CLI search, the
//! recall report, the SQL table function):
//!
//! - a NULL query vector is an error naming its row (never silently dropped), as is a NaN or
//!   infinite value;
//! - query ids follow [`crate::ids`] (integers that fit in Int64, no NULLs), row numbers
//!   when there is no id column;
//! - the corpus codes' Matryoshka truncation is applied to each query (then renormalized
//!   when the codes were);
//! - the dimension (after truncation) must be the corpus'.

use arrow_array::{Array, ArrayRef, RecordBatch};

use crate::codec::matryoshka::{truncate, MatryoshkaOptions};
use crate::error::{Error, Result};
use crate::metadata::Truncation;
use crate::vectors::Vectors;

/// Query vectors and their ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuerySet {
    /// Row-major values, `dim` per query.
    pub values: Vec<f32>,
    /// One id per query.
    pub ids: Vec<i64>,
}

/// Reads queries batch by batch (see the module docs for the rules).
#[derive(Debug)]
pub struct QueryReader {
    column: String,
    id_column: Option<String>,
    truncation: Option<Truncation>,
    dim: usize,
    out: QuerySet,
    /// Query number of the first row of the current file (rows in messages count from it).
    row_base: u64,
}

impl QueryReader {
    /// Queries from the vector column `column` (ids from `id_column`), for a corpus of `dim`
    /// dimensions whose codes were truncated by `truncation`.
    pub fn new(
        column: &str,
        id_column: Option<&str>,
        truncation: Option<Truncation>,
        dim: usize,
    ) -> Self {
        QueryReader {
            column: column.to_string(),
            id_column: id_column.map(str::to_string),
            truncation,
            dim,
            out: QuerySet::default(),
            row_base: 0,
        }
    }

    /// Queries read so far.
    pub fn len(&self) -> usize {
        self.out.ids.len()
    }

    /// Whether no query was read yet.
    pub fn is_empty(&self) -> bool {
        self.out.ids.is_empty()
    }

    /// Appends the queries of `batch`, which holds the vector column (and the id column)
    /// by name.
    pub fn push_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let get = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::MissingColumn {
                    column: name.to_string(),
                    available: batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        };
        let vectors = get(&self.column)?;
        let ids = match &self.id_column {
            Some(n) => Some(get(n)?),
            None => None,
        };
        self.push(vectors.as_ref(), ids.map(|a| a.as_ref()))
    }

    /// Appends queries: `vectors` a vector column, `ids` their ids (row numbers if None).
    pub fn push(&mut self, vectors: &dyn Array, ids: Option<&dyn Array>) -> Result<()> {
        let (next, first) = (
            self.out.ids.len() as i64,
            self.out.ids.len() as u64 - self.row_base,
        );
        // Errors in the vectors name the query column and the row (a NULL query, a NaN or
        // infinity: never searched, as it would score every row NaN).
        let in_col = |e: Error| e.offset_rows(first).in_column(&self.column);
        let truncated: Option<ArrayRef> = match self.truncation {
            Some(t) => Some(std::sync::Arc::new(
                truncate(
                    vectors,
                    &MatryoshkaOptions {
                        dims: t.dims,
                        normalize: t.normalized,
                    },
                )
                .map_err(in_col)?,
            )),
            None => None,
        };
        let col = truncated.as_deref().unwrap_or(vectors);
        let v = Vectors::try_new(col).map_err(in_col)?;
        if let Some(r) = (0..v.len()).find(|&r| !v.is_valid(r)) {
            return Err(in_col(Error::NullRow {
                what: "query",
                row: r as u64,
            }));
        }
        v.find_non_finite(0..v.len()).map_err(in_col)?;
        if !v.is_empty() && v.dim() != self.dim {
            return Err(Error::DimensionMismatch {
                context: match self.truncation {
                    Some(t) => format!("the queries (cut to the codes' {} dimensions)", t.dims),
                    None => "the queries".into(),
                },
                expected: self.dim,
                found: v.dim(),
            });
        }
        match ids {
            Some(a) => {
                if a.len() != v.len() {
                    return Err(Error::Schema(format!(
                        "{} query ids for {} queries",
                        a.len(),
                        v.len()
                    )));
                }
                let ids = crate::ids::id_values(a, first)
                    .map_err(|e| e.in_column(self.id_column.as_deref().unwrap_or("query id")))?;
                self.out.ids.extend(ids);
            }
            None => self.out.ids.extend(next..next + v.len() as i64),
        }
        self.out.values.extend_from_slice(v.values());
        Ok(())
    }

    /// The queries read.
    pub fn finish(self) -> QuerySet {
        self.out
    }

    /// Reads the queries of Parquet `files` (in order; errors name the file and row).
    #[cfg(feature = "job")]
    pub fn read_files(mut self, files: &[crate::job::InputFile]) -> Result<QuerySet> {
        use parquet::arrow::ProjectionMask;
        for file in files {
            let column = self.column.clone();
            let ctx = |e: Error| e.in_file(file.path.display(), &column);
            let b = file.reader().map_err(ctx)?;
            let mut proj =
                vec![crate::vectors::column_index(b.schema(), &self.column).map_err(ctx)?];
            if let Some(id) = &self.id_column {
                proj.push(crate::vectors::column_index(b.schema(), id).map_err(ctx)?);
            }
            let mask = ProjectionMask::roots(b.parquet_schema(), proj);
            // Rows in messages count from the start of this file.
            self.row_base = self.len() as u64;
            for batch in b.with_projection(mask).build().map_err(|e| ctx(e.into()))? {
                let batch = batch.map_err(|e| ctx(e.into()))?;
                self.push_batch(&batch).map_err(ctx)?;
            }
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::vectors_array;
    use arrow_array::{Int64Array, UInt64Array};

    #[test]
    fn one_rule_for_nulls_ids_truncation_and_dimension() {
        // Ids: row numbers running on across batches without an id column.
        let mut r = QueryReader::new("v", None, None, 8);
        r.push(&vectors_array(3, 8, 1, 0.0), None).unwrap();
        r.push(&vectors_array(2, 8, 2, 0.0), None).unwrap();
        let q = r.finish();
        assert_eq!(q.ids, vec![0, 1, 2, 3, 4]);
        assert_eq!(q.values.len(), 5 * 8);
        // A NULL vector: an error naming its row, counted across batches.
        let mut r = QueryReader::new("v", None, None, 8);
        r.push(&vectors_array(3, 8, 1, 0.0), None).unwrap();
        let e = r.push(&vectors_array(40, 8, 1, 0.5), None).unwrap_err();
        assert!(e.to_string().contains("NULL"), "{e}");
        let bad = e.to_string();
        let row: u64 = bad
            .split("row ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(row >= 3, "{bad}");
        // Ids beyond Int64 are refused, NULL ids too; valid ones come back as given.
        let mut r = QueryReader::new("v", Some("id"), None, 8);
        let e = r
            .push(
                &vectors_array(2, 8, 1, 0.0),
                Some(&UInt64Array::from(vec![1, u64::MAX])),
            )
            .unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
        let mut r = QueryReader::new("v", Some("id"), None, 8);
        r.push(
            &vectors_array(2, 8, 1, 0.0),
            Some(&Int64Array::from(vec![7, -3])),
        )
        .unwrap();
        assert_eq!(r.finish().ids, vec![7, -3]);
        // Truncation: 8 dimensions cut to the codes' 4, renormalized; a mismatch is an error.
        let t = Truncation {
            dims: 4,
            normalized: true,
        };
        let mut r = QueryReader::new("v", None, Some(t), 4);
        r.push(&vectors_array(2, 8, 1, 0.0), None).unwrap();
        let q = r.finish();
        assert_eq!(q.values.len(), 2 * 4);
        let norm: f32 = q.values[..4].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        let mut r = QueryReader::new("v", None, None, 4);
        let e = r.push(&vectors_array(2, 8, 1, 0.0), None).unwrap_err();
        assert!(matches!(e, Error::DimensionMismatch { .. }), "{e}");
    }

    #[test]
    fn non_finite_and_null_queries_name_the_column_and_row() {
        use crate::codec::tests::with_values;
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut r = QueryReader::new("query_vec", None, None, 4);
            r.push(&vectors_array(3, 4, 1, 0.0), None).unwrap();
            let mut values = vec![0.5f32; 5 * 4];
            values[2 * 4 + 1] = x;
            let e = r
                .push(&with_values(&vectors_array(5, 4, 2, 0.0), values), None)
                .unwrap_err();
            match &e {
                Error::InColumn { column, error } => {
                    assert_eq!(column, "query_vec");
                    // Rows count across batches: the third query of the second batch.
                    assert!(
                        matches!(**error, Error::NonFinite { row: 5, dim: 1, .. }),
                        "{e}"
                    );
                }
                e => panic!("expected an error naming the column, got {e}"),
            }
        }
        let mut r = QueryReader::new("query_vec", None, None, 8);
        let e = r.push(&vectors_array(40, 8, 1, 0.5), None).unwrap_err();
        assert!(
            matches!(e, Error::InColumn { ref column, ref error }
                if column == "query_vec" && matches!(**error, Error::NullRow { .. })),
            "{e}"
        );
    }
}
