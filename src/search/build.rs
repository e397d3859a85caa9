//! One path from stored code columns to a searchable [`Corpus`], used by CLI search
//! ([`super::load`]), the SQL table function and anything else holding record batches:
//!
//! 1. [`CodeLayout::from_schema`] ([`super::layout`]) finds, from a schema alone, the code column of each coded
//!    tier of a chain (by its embquant recipe), the calibration they share, the Matryoshka
//!    truncation and the float column;
//! 2. [`CorpusBuilder`] is fed the record batches one at a time and appends their codes,
//!    validity and ids; each recipe builds its own codec ([`ColumnRecipe::codec`]);
//! 3. [`CorpusBuilder::finish`] gives the corpus with its ids.
//!
//! The rules are the same for every front end: ids follow [`crate::ids`] (integers that fit
//! in Int64, no NULLs), a row whose code or float vector is NULL is never returned, every
//! code column must carry one calibration, and RaBitQ codes need their recorded rotation.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Int8Type};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, RecordBatch};
use arrow_schema::{DataType, Schema};

use super::layout::CodeLayout;
use super::tier::{check_factors, check_halves, Codes};
use super::tiered::{Corpus, FloatRows, InMemoryFloats};
use crate::calibration::Calibration;
use crate::codec::matryoshka::{truncate, MatryoshkaOptions};
use crate::codec::scheme::{Scheme, SchemeCodec};
use crate::error::{Error, Result};
use crate::metadata::{ColumnRecipe, Truncation};
use crate::vectors::Vectors;

/// The bytes of the rows of a `FixedSizeBinary(width)` column (None for another type).
fn binary_rows(col: &dyn Array, width: usize) -> Option<&[u8]> {
    match col.data_type() {
        DataType::FixedSizeBinary(w) if *w as usize == width => {
            let a = col.as_fixed_size_binary();
            let off = a.offset() * width;
            Some(&a.value_data()[off..off + a.len() * width])
        }
        _ => None,
    }
}

/// The values of the rows of a `FixedSizeList<T, dim>` column (None for another type).
fn list_rows<T: ArrowPrimitiveType>(col: &dyn Array, dim: usize) -> Option<&[T::Native]> {
    match col.data_type() {
        DataType::FixedSizeList(f, w) if f.data_type() == &T::DATA_TYPE && *w as usize == dim => {
            let a = col.as_fixed_size_list();
            let off = a.offset() * dim;
            Some(&a.values().as_primitive::<T>().values()[off..off + a.len() * dim])
        }
        _ => None,
    }
}

/// Codes of one tier being appended.
enum Buffer {
    Binary(Vec<u8>, crate::codec::binary::BinaryCodec),
    Int8(Vec<i8>, crate::codec::int8::Int8Codec),
    Int4(Vec<u8>, crate::codec::int4::Int4Codec),
    F16(Vec<half::f16>),
    Rabitq(Vec<u8>, crate::codec::rabitq::RabitqCodec),
    /// Extra bits of multi-bit RaBitQ (scored with the sign column's codes).
    RabitqEx(Vec<u8>, crate::codec::rabitq_ex::RabitqExCodec),
}

/// A corpus ready to search, with what a caller needs to report and encode queries.
pub struct LoadedCorpus {
    /// The corpus.
    pub corpus: Corpus,
    /// Values of the id column per row (row numbers when there is none).
    pub ids: Vec<i64>,
    /// The calibration the codes were made with (None for sign bits / f16 only).
    pub calibration: Option<Calibration>,
    /// Matryoshka truncation the codes were made with: apply it to queries.
    pub truncation: Option<Truncation>,
}

/// Builds a [`Corpus`] from record batches of a corpus table, fed one at a time.
pub struct CorpusBuilder {
    layout: CodeLayout,
    /// (column name, recipe, codes so far) per coded tier.
    buffers: Vec<(String, ColumnRecipe, Buffer)>,
    /// The float column held in memory (None: no float tier, or the caller supplies the
    /// float rows with [`CorpusBuilder::finish_with`]).
    floats: Option<(String, Vec<f32>, usize)>,
    id: Option<String>,
    ids: Vec<i64>,
    valid: Vec<bool>,
}

impl CorpusBuilder {
    /// A builder for batches whose schema gave `layout` (`schema` is that schema). The ids
    /// come from `id_column` (row numbers without one). With `floats_in_memory`, the float
    /// column (when the layout has one) is held in memory for the float tier.
    pub fn new(
        layout: CodeLayout,
        schema: &Schema,
        id_column: Option<&str>,
        floats_in_memory: bool,
    ) -> Result<Self> {
        let mut buffers = Vec::new();
        for (i, r) in &layout.codes {
            let buf = match r.codec(layout.calibration.as_ref())? {
                SchemeCodec::Binary(c) => Buffer::Binary(Vec::new(), c),
                SchemeCodec::Int8(c, _) => Buffer::Int8(Vec::new(), c),
                SchemeCodec::Int4(c) => Buffer::Int4(Vec::new(), c),
                SchemeCodec::Half(_) if r.scheme == Scheme::F16 => Buffer::F16(Vec::new()),
                SchemeCodec::Half(_) => {
                    return Err(Error::Schema(format!(
                        "column {:?}: {} codes are not searchable (quantize with f16)",
                        r.name, r.scheme
                    )))
                }
                SchemeCodec::Rabitq(c) => Buffer::Rabitq(Vec::new(), c),
                SchemeCodec::RabitqEx(c) => Buffer::RabitqEx(Vec::new(), c),
            };
            buffers.push((schema.field(*i).name().clone(), r.clone(), buf));
        }
        if let Some(name) = id_column {
            crate::vectors::column_index(schema, name)?;
        }
        let floats = match (layout.float, floats_in_memory) {
            (Some(i), true) => Some((schema.field(i).name().clone(), Vec::new(), 0)),
            _ => None,
        };
        Ok(CorpusBuilder {
            layout,
            buffers,
            floats,
            id: id_column.map(str::to_string),
            ids: Vec::new(),
            valid: Vec::new(),
        })
    }

    /// Rows appended so far.
    pub fn rows(&self) -> usize {
        self.valid.len()
    }

    /// Appends the rows of `batch` (which must hold the layout's columns by name);
    /// `first_row` is the row of its first row in its file or table (for error messages).
    pub fn push(&mut self, batch: &RecordBatch, first_row: u64) -> Result<()> {
        let start = self.valid.len();
        let n = batch.num_rows();
        let column = |name: &str| -> Result<&ArrayRef> {
            batch.column_by_name(name).ok_or_else(|| {
                Error::Schema(format!(
                    "column {name:?} is missing from the rows read (the schemas disagree: a corrupt file?)"
                ))
            })
        };
        let mut valid = vec![true; n];
        let mark = |c: &dyn Array, valid: &mut [bool]| {
            if c.null_count() > 0 {
                (0..c.len()).for_each(|r| valid[r] &= c.is_valid(r));
            }
        };
        for (name, r, buf) in &mut self.buffers {
            let col = column(name)?;
            mark(col.as_ref(), &mut valid);
            let bad = |what: &str| Error::UnsupportedCodeType {
                expected: format!("{what} codes in column {name:?}"),
                found: col.data_type().clone(),
            };
            // Floats in the codes (RaBitQ factors, f16 values) must be ones an encoder
            // writes: a NaN would rank first and void the bound (rows counted in the file).
            let in_col = |e: Error| e.in_column(name);
            match buf {
                Buffer::Binary(v, _) | Buffer::Int4(v, _) => v.extend_from_slice(
                    binary_rows(col, r.bytes_per_vector).ok_or_else(|| bad("FixedSizeBinary"))?,
                ),
                Buffer::Rabitq(v, c) => {
                    let rows = binary_rows(col, r.bytes_per_vector)
                        .ok_or_else(|| bad("FixedSizeBinary"))?;
                    check_factors(rows, c.width(), first_row, |x| c.bad_factor(x))
                        .map_err(in_col)?;
                    v.extend_from_slice(rows);
                }
                Buffer::RabitqEx(v, c) => {
                    let rows = binary_rows(col, r.bytes_per_vector)
                        .ok_or_else(|| bad("FixedSizeBinary"))?;
                    check_factors(rows, c.width(), first_row, |x| c.bad_factor(x))
                        .map_err(in_col)?;
                    v.extend_from_slice(rows);
                }
                Buffer::Int8(v, _) => match binary_rows(col, r.dims) {
                    Some(b) => v.extend(b.iter().map(|&x| x as i8)),
                    None => v.extend_from_slice(
                        list_rows::<Int8Type>(col, r.dims).ok_or_else(|| bad("int8"))?,
                    ),
                },
                Buffer::F16(v) => {
                    let rows = list_rows::<Float16Type>(col, r.dims).ok_or_else(|| bad("f16"))?;
                    check_halves(rows, r.dims, first_row).map_err(in_col)?;
                    v.extend_from_slice(rows);
                }
            }
        }
        if let Some((name, values, dim)) = &mut self.floats {
            let col = column(name)?;
            let col: ArrayRef = match self.layout.truncation {
                Some(t) => std::sync::Arc::new(truncate(
                    col.as_ref(),
                    &MatryoshkaOptions {
                        dims: t.dims,
                        normalize: t.normalized,
                    },
                )?),
                None => col.clone(),
            };
            mark(col.as_ref(), &mut valid);
            let v = Vectors::try_new(col.as_ref()).map_err(|e| e.offset_rows(first_row))?;
            if n > 0 {
                *dim = v.dim();
            }
            values.extend_from_slice(v.values());
        }
        match &self.id {
            Some(name) => {
                let ids = crate::ids::id_values(column(name)?.as_ref(), first_row)
                    .map_err(|e| e.in_column(name))?;
                self.ids.extend(ids);
            }
            None => self.ids.extend(start as i64..(start + n) as i64),
        }
        self.valid.extend(valid);
        Ok(())
    }

    /// The corpus, its float tier (if any) served by the float column held in memory.
    pub fn finish(mut self) -> Result<LoadedCorpus> {
        let floats = self.floats.take().map(|(_, values, dim)| (values, dim));
        let dim = match (self.layout.dims(), &floats) {
            (Some(d), Some((_, fd))) if self.rows() > 0 && *fd != d => {
                return Err(Error::DimensionMismatch {
                    context: "the float column (after any truncation) against the codes".into(),
                    expected: d,
                    found: *fd,
                })
            }
            (Some(d), _) => d,
            (None, Some((_, fd))) => *fd,
            (None, None) => 0,
        };
        let floats = floats
            .map(|(values, _)| Box::new(InMemoryFloats { values, dim }) as Box<dyn FloatRows>);
        self.finish_with(floats, dim)
    }

    /// The corpus of `dim` dimensions (the codes' when there are codes), its float tier
    /// served by `floats`.
    pub fn finish_with(
        self,
        floats: Option<Box<dyn FloatRows>>,
        dim: usize,
    ) -> Result<LoadedCorpus> {
        let dim = self.layout.dims().unwrap_or(dim);
        let mut corpus = Corpus::new(self.valid.len(), dim);
        // The sign codes: one allocation the 1-bit tier and every multi-bit tier score with
        // (the layout reads the sign column whenever it reads extra bits).
        let mut buffers = self.buffers;
        let mut signs: Option<std::sync::Arc<[u8]>> = None;
        for (_, _, b) in buffers.iter_mut() {
            if let Buffer::Rabitq(v, _) = b {
                signs = Some(std::mem::take(v).into());
            }
        }
        for (name, _, buf) in buffers {
            corpus.insert(match buf {
                Buffer::Binary(v, c) => Codes::Binary(v, c),
                Buffer::Int8(v, c) => Codes::Int8(v, c),
                Buffer::Int4(v, c) => Codes::Int4(v, c),
                Buffer::F16(v) => Codes::F16(v),
                Buffer::Rabitq(_, c) => Codes::Rabitq(signs.clone().expect("taken above"), c),
                Buffer::RabitqEx(extra, codec) => Codes::RabitqEx {
                    signs: signs.clone().ok_or_else(|| {
                        Error::Schema(format!(
                            "column {name:?}: extra RaBitQ bits without their sign column"
                        ))
                    })?,
                    extra,
                    codec,
                },
            })?;
        }
        if let Some(f) = floats {
            corpus.set_floats(f);
        }
        corpus.set_valid(Some(self.valid))?;
        Ok(LoadedCorpus {
            corpus,
            ids: self.ids,
            calibration: self.layout.calibration,
            truncation: self.layout.truncation,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::codec::tests::calibrate;
    use crate::quantizer::{QuantizeOptions, Quantizer};
    use crate::search::chain::Tier;
    use crate::search::RabitqBits;
    use crate::search::TierSpec;
    use crate::testutil::vectors_array;

    /// 300 rows of 24-d vectors (some NULL) with ids, quantized to every searchable scheme.
    fn quantized() -> RecordBatch {
        let v = vectors_array(300, 24, 5, 0.05);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", arrow_schema::DataType::Int64, false),
            Field::new("emb", v.data_type().clone(), true),
        ]));
        let ids = Int64Array::from((0..300).map(|i| 1000 + i).collect::<Vec<i64>>());
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(v.clone())]).unwrap();
        let mut o = QuantizeOptions::new("emb");
        o.schemes = vec![
            Scheme::Binary,
            Scheme::Int8,
            Scheme::Int4,
            Scheme::F16,
            Scheme::Rabitq,
        ];
        o.rabitq_bits = 4;
        let q = Quantizer::try_new(schema, calibrate(&v), o).unwrap();
        q.quantize(&batch).unwrap().batch
    }

    #[test]
    fn multi_bit_rabitq_columns_load_as_their_tier() {
        let batch = quantized();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert!(names.ends_with(&["emb_rq", "emb_rq4"]), "{names:?}");
        let (r, _) = ColumnRecipe::from_field(schema.field_with_name("emb_rq4").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(r.scheme, Scheme::RabitqEx);
        assert_eq!(
            (r.rabitq_bits, r.sign_column.as_deref()),
            (Some(4), Some("emb_rq"))
        );
        // 24 dims pad to 32 bits: 3 planes of 4 bytes and two f32.
        assert_eq!(r.bytes_per_vector, 3 * 4 + 8);
        let chain = TierSpec::parse_chain("rabitq1:bound,rabitq4:bound,int8").unwrap();
        let layout = CodeLayout::from_schema(&schema, Some("emb"), &chain).unwrap();
        assert_eq!(layout.codes.len(), 3);
        let mut b = CorpusBuilder::new(layout, &schema, Some("id"), false).unwrap();
        b.push(&batch, 0).unwrap();
        let loaded = b.finish().unwrap();
        let queries: Vec<f32> = crate::Vectors::try_new(&vectors_array(5, 24, 8, 0.0))
            .unwrap()
            .values()
            .to_vec();
        // The last tier of each chain gives the scores: the 4-bit tier alone is the one
        // that read `emb_rq4`.
        for (chain, last) in [
            ("rabitq4", Tier::Rabitq(RabitqBits::new(4).unwrap())),
            ("rabitq1:bound,rabitq4:bound,int8", Tier::Int8),
            ("rabitq4:3,int8", Tier::Int8),
        ] {
            let hits = loaded
                .corpus
                .search(&queries, 5, &TierSpec::parse_chain(chain).unwrap())
                .unwrap();
            assert!(hits.iter().all(|h| h.len() == 5), "{chain}");
            assert!(
                hits.iter().flatten().all(|h| h.tier == last),
                "{chain}: {:?}",
                hits[0]
            );
        }
        // The 1-bit tier alone is another tier, scoring from `emb_rq`.
        let one = loaded
            .corpus
            .search(&queries, 5, &TierSpec::parse_chain("rabitq1").unwrap())
            .unwrap();
        assert!(one
            .iter()
            .flatten()
            .all(|h| h.tier == Tier::Rabitq(RabitqBits::ONE)));
        // Without the extra-bits column the 4-bit tier names what is missing.
        let mut o = QuantizeOptions::new("emb");
        o.schemes = vec![Scheme::Rabitq];
        let v = vectors_array(10, 24, 5, 0.0);
        let s = Arc::new(Schema::new(vec![Field::new(
            "emb",
            v.data_type().clone(),
            true,
        )]));
        let q = Quantizer::try_new(s, calibrate(&v), o).unwrap();
        let err = CodeLayout::from_schema(
            &q.schema(),
            Some("emb"),
            &TierSpec::parse_chain("rabitq4").unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rabitq4 extra bits"), "{err}");
        // rabitq_bits without the rabitq scheme, or rabitq_ex asked for directly, is refused.
        let mut o = QuantizeOptions::new("emb");
        o.rabitq_bits = 4;
        assert_err!(o.column_schemes(), crate::Error::BadArgument { .. });
        o.schemes = vec![Scheme::RabitqEx];
        assert_err!(o.column_schemes(), crate::Error::BadArgument { .. });
    }

    #[test]
    fn fed_batch_by_batch_the_corpus_is_the_whole_tables() {
        let batch = quantized();
        let chain = TierSpec::parse_chain("rabitq:4,binary:4,int4:3,f16:2,int8:2,float").unwrap();
        let layout = CodeLayout::from_schema(&batch.schema(), Some("emb"), &chain).unwrap();
        assert_eq!(layout.codes.len(), 5);
        assert!(layout.calibration.is_some() && layout.float.is_some());
        let build = |parts: &[usize]| {
            let mut b =
                CorpusBuilder::new(layout.clone(), &batch.schema(), Some("id"), true).unwrap();
            let mut at = 0;
            for &n in parts {
                b.push(&batch.slice(at, n), at as u64).unwrap();
                at += n;
            }
            b.finish().unwrap()
        };
        let whole = build(&[300]);
        let parts = build(&[1, 128, 0, 71, 100]);
        assert_eq!(whole.ids, parts.ids);
        assert_eq!(whole.ids[7], 1007);
        assert_eq!(whole.corpus.valid(), parts.corpus.valid());
        assert!(whole.corpus.valid().is_some(), "NULL rows are marked");
        let queries = Vectors::try_new(&vectors_array(9, 24, 8, 0.0))
            .unwrap()
            .values()
            .to_vec();
        for chain in [
            "rabitq",
            "binary",
            "int4",
            "f16",
            "int8",
            "float",
            "rabitq:4,binary:4,int4:3,f16:2,int8:2,float",
        ] {
            let chain = TierSpec::parse_chain(chain).unwrap();
            let a = whole.corpus.search(&queries, 10, &chain).unwrap();
            let b = parts.corpus.search(&queries, 10, &chain).unwrap();
            assert_eq!(a, b);
            let valid = whole.corpus.valid().unwrap();
            assert!(a.iter().flatten().all(|h| valid[h.row as usize]));
        }
    }

    #[test]
    fn layout_and_builder_errors_name_the_problem() {
        let batch = quantized();
        let schema = batch.schema();
        // A chain needing codes the table lacks; the float tier without a float column.
        let only = Schema::new(
            schema
                .fields()
                .iter()
                .filter(|f| f.name() != "emb_int4")
                .cloned()
                .collect::<Vec<_>>(),
        );
        let e =
            CodeLayout::from_schema(&only, Some("emb"), &TierSpec::parse_chain("int4").unwrap())
                .unwrap_err();
        assert!(e.to_string().contains("no int4 codes"), "{e}");
        let dropped = Schema::new(
            schema
                .fields()
                .iter()
                .filter(|f| f.name() != "emb")
                .cloned()
                .collect::<Vec<_>>(),
        );
        let e = CodeLayout::from_schema(
            &dropped,
            Some("emb"),
            &TierSpec::parse_chain("int8:2,float").unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("float column"), "{e}");
        // Without a source, the one source column with every scheme is found.
        let l = CodeLayout::from_schema(
            &schema,
            None,
            &TierSpec::parse_chain("binary:2,int8").unwrap(),
        )
        .unwrap();
        assert_eq!(l.source.as_deref(), Some("emb"));
        // A batch missing a code column.
        let mut b = CorpusBuilder::new(l.clone(), &schema, Some("id"), false).unwrap();
        let e = b.push(&batch.project(&[0, 1]).unwrap(), 0).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        // Codes of the wrong size for the corpus.
        let e = Corpus::new(10, 24)
            .with(Codes::Int8(
                vec![0; 9 * 24],
                crate::codec::int8::Int8Codec::new(l.calibration.as_ref().unwrap()),
            ))
            .err()
            .unwrap();
        assert!(e.to_string().contains("10 rows x 24"), "{e}");
        // Two files under different calibrations are not one corpus.
        let other = quantized_with(vectors_array(300, 24, 6, 0.0));
        let l2 = CodeLayout::from_schema(
            &other.schema(),
            None,
            &TierSpec::parse_chain("binary:2,int8").unwrap(),
        )
        .unwrap();
        let e = l.check_same(&l2).unwrap_err();
        assert!(e.to_string().contains("another calibration"), "{e}");
    }

    /// `batch` with the codes of column `name` rewritten by `edit` (row-major bytes or f16).
    fn with_codes(batch: &RecordBatch, name: &str, edit: impl Fn(&mut [u8])) -> RecordBatch {
        let i = batch.schema().index_of(name).unwrap();
        let col = batch.column(i);
        let new: ArrayRef = match col.data_type() {
            DataType::FixedSizeBinary(w) => {
                let a = col.as_fixed_size_binary();
                let mut bytes = a.value_data().to_vec();
                edit(&mut bytes);
                Arc::new(arrow_array::FixedSizeBinaryArray::new(
                    *w,
                    bytes.into(),
                    a.nulls().cloned(),
                ))
            }
            _ => {
                let a = col.as_fixed_size_list();
                let v = a.values().as_primitive::<Float16Type>();
                let mut bytes: Vec<u8> = v.values().iter().flat_map(|h| h.to_le_bytes()).collect();
                edit(&mut bytes);
                let halves: Vec<half::f16> = bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]))
                    .collect();
                Arc::new(arrow_array::FixedSizeListArray::new(
                    Arc::new(Field::new_list_field(DataType::Float16, false)),
                    a.value_length(),
                    Arc::new(arrow_array::Float16Array::from(halves)),
                    a.nulls().cloned(),
                ))
            }
        };
        let mut cols = batch.columns().to_vec();
        cols[i] = new;
        RecordBatch::try_new(batch.schema(), cols).unwrap()
    }

    #[test]
    fn non_finite_factors_and_f16_codes_name_the_column_and_row() {
        let batch = quantized();
        let schema = batch.schema();
        let load = |b: &RecordBatch, chain: &str| {
            let chain = TierSpec::parse_chain(chain).unwrap();
            let layout = CodeLayout::from_schema(&schema, Some("emb"), &chain).unwrap();
            let mut builder = CorpusBuilder::new(layout, &schema, Some("id"), false).unwrap();
            // The batch starts at row 1000 of its file.
            builder.push(b, 1000)?;
            builder.finish().map(|_| ())
        };
        load(&batch, "rabitq1:bound,rabitq4:bound,f16").unwrap();
        // 24 dims: sign codes of 4 bytes then |r| and ip; extra codes of 3 x 4 bytes then
        // scale and ip_ex.
        let put =
            |at: usize, x: f32| move |b: &mut [u8]| b[at..at + 4].copy_from_slice(&x.to_le_bytes());
        let cases: Vec<(RecordBatch, &str, u64, &str)> = vec![
            (
                with_codes(&batch, "emb_rq", put(17 * 12 + 4, f32::NAN)),
                "emb_rq",
                1017,
                "norm",
            ),
            (
                with_codes(&batch, "emb_rq", put(3 * 12 + 8, f32::INFINITY)),
                "emb_rq",
                1003,
                "ip",
            ),
            (
                with_codes(&batch, "emb_rq", put(8, -1.0)),
                "emb_rq",
                1000,
                "ip",
            ),
            (
                with_codes(&batch, "emb_rq4", put(250 * 20 + 12, f32::NAN)),
                "emb_rq4",
                1250,
                "scale",
            ),
            (
                with_codes(&batch, "emb_rq4", put(9 * 20 + 16, f32::NEG_INFINITY)),
                "emb_rq4",
                1009,
                "ip_ex",
            ),
            (
                // f16 NaN (0x7e00) at row 5, dimension 3.
                with_codes(&batch, "emb_f16", |b| {
                    b[(5 * 24 + 3) * 2..(5 * 24 + 4) * 2].copy_from_slice(&[0x00, 0x7e])
                }),
                "emb_f16",
                1005,
                "value at dimension 3",
            ),
        ];
        for (b, column, row, field) in cases {
            let e = load(&b, "rabitq1:bound,rabitq4:bound,f16").unwrap_err();
            let text = e.to_string();
            match e {
                Error::InColumn { column: c, error } => match *error {
                    Error::BadCode {
                        row: r, field: f, ..
                    } => {
                        assert_eq!((c.as_str(), r, f.as_str()), (column, row, field), "{text}")
                    }
                    e => panic!("expected BadCode, got {e}"),
                },
                e => panic!("expected an error naming the column, got {e}"),
            }
        }
        // Codes given to a corpus directly are checked too (rows counted in the corpus).
        let chain = TierSpec::parse_chain("rabitq").unwrap();
        let layout = CodeLayout::from_schema(&schema, Some("emb"), &chain).unwrap();
        let SchemeCodec::Rabitq(c) = layout.codes[0]
            .1
            .codec(layout.calibration.as_ref())
            .unwrap()
        else {
            panic!("a RaBitQ codec");
        };
        let mut codes = binary_rows(batch.column_by_name("emb_rq").unwrap(), 12)
            .unwrap()
            .to_vec();
        codes[40 * 12 + 4..40 * 12 + 8].copy_from_slice(&f32::NAN.to_le_bytes());
        let e = Corpus::new(300, 24)
            .with(Codes::Rabitq(codes.into(), c))
            .err()
            .unwrap();
        assert!(matches!(e, Error::BadCode { row: 40, .. }), "{e}");
    }

    #[test]
    fn k_beyond_the_corpus_and_non_finite_queries_are_refused() {
        let batch = quantized();
        let chain = TierSpec::parse_chain("rabitq1:bound,rabitq4:bound,int8").unwrap();
        let layout = CodeLayout::from_schema(&batch.schema(), Some("emb"), &chain).unwrap();
        let mut b = CorpusBuilder::new(layout, &batch.schema(), Some("id"), false).unwrap();
        b.push(&batch, 0).unwrap();
        let c = b.finish().unwrap().corpus;
        let mut q = Vectors::try_new(&vectors_array(3, 24, 8, 0.0))
            .unwrap()
            .values()
            .to_vec();
        // Every row is fine (certified or not); one more, or none, is refused with the
        // maximum, never cut to the corpus and reported as a certified top-k.
        let (hits, reports) = c.search_reported(&q, 300, &chain).unwrap();
        assert!(hits.iter().all(|h| h.len() <= 300) && reports.len() == 3);
        for k in [0, 301, 100_000_000] {
            let e = c.search_reported(&q, k, &chain).unwrap_err();
            assert!(matches!(e, Error::KOutOfRange { max: 300, .. }), "{e}");
            assert!(e.to_string().contains("at most 300"), "{e}");
        }
        // A NaN or infinite query: refused naming the query and the dimension.
        for x in [f32::NAN, f32::INFINITY] {
            q[24 + 5] = x;
            let e = c.search_reported(&q, 10, &chain).unwrap_err();
            assert!(matches!(e, Error::NonFinite { row: 1, dim: 5, .. }), "{e}");
        }
    }

    fn quantized_with(v: arrow_array::FixedSizeListArray) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "emb",
            v.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(v.clone())]).unwrap();
        let mut o = QuantizeOptions::new("emb");
        o.schemes = vec![Scheme::Binary, Scheme::Int8];
        Quantizer::try_new(schema, calibrate(&v), o)
            .unwrap()
            .quantize(&batch)
            .unwrap()
            .batch
    }
}
