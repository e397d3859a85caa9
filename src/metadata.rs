//! What an embquant Parquet file says about itself: the recipe of every quantized column
//! (Arrow field metadata) and the whole job (Parquet key-value metadata under
//! [`METADATA_KEY`]).
//!
//! Each quantized field carries two keys: `embquant` (the [`ColumnRecipe`] as JSON) and
//! `embquant.calibration` (the full [`Calibration`] JSON), so a reader holding only the
//! schema can decode the column. The file footer carries `embquant` = [`FileMetadata`] JSON:
//! format version, embquant version, the recipes, the calibration, the clip counts observed
//! and the lineage (input files, sizes, row counts, source column).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::calibration::{Calibration, RangeShape, MAX_DIMS};
use crate::codec::int8::Int8Layout;
use crate::codec::rabitq::Rotation;
use crate::codec::scheme::{CodeParams, Scheme, SchemeCodec};
use crate::error::{Error, Result};

/// Key of the recipe, both in field metadata and in the Parquet footer.
pub const METADATA_KEY: &str = "embquant";
/// Field metadata key holding the calibration JSON.
pub const CALIBRATION_KEY: &str = "embquant.calibration";
/// Version of the metadata written by this crate.
pub const FILE_FORMAT_VERSION: u32 = 1;

/// Matryoshka truncation applied before encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// Dimensions kept.
    pub dims: usize,
    /// Whether the prefix was re-normalized to unit length.
    pub normalized: bool,
}

/// The recipe of one quantized column: everything a reader needs besides the calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnRecipe {
    /// Metadata format version.
    pub format_version: u32,
    /// The column's name.
    pub name: String,
    /// The scheme.
    pub scheme: Scheme,
    /// The float column it was made from.
    pub source_column: String,
    /// Dimension of the source vectors.
    pub source_dims: usize,
    /// Dimensions encoded (after Matryoshka truncation).
    pub dims: usize,
    /// Matryoshka truncation, if any.
    pub truncation: Option<Truncation>,
    /// Arrow type of the codes, e.g. `FixedSizeBinary(384)`.
    pub arrow_type: String,
    /// How values map to codes and how codes are packed.
    pub encoding: String,
    /// Int8 layout (int8 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8_layout: Option<Int8Layout>,
    /// Binary threshold (binary only): zero, mean or median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<crate::codec::binary::BinaryThreshold>,
    /// Bits per dimension of multi-bit RaBitQ (the extra-bits column only: 2 to 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabitq_bits: Option<u8>,
    /// The column holding the sign bits and factors these extra bits refine (the extra-bits
    /// column only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_column: Option<String>,
    /// Rotation before taking signs (rabitq only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<crate::codec::rabitq::Rotation>,
    /// The shape of the calibration's ranges (int8 and int4 on per-tensor or symmetric
    /// ranges only; per dimension and asymmetric when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_shape: Option<RangeShape>,
    /// Bits per code after padding (rabitq only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_bits: Option<usize>,
    /// Bytes per encoded vector.
    pub bytes_per_vector: usize,
    /// Fingerprint of the calibration the codes were made with (none for sign bits, f16, bf16).
    pub calibration_fingerprint: Option<String>,
}

impl ColumnRecipe {
    /// The recipe of the `scheme` codes of `source_column` (`source_dims` dimensions,
    /// `truncation` applied first) made under `params`, with the fingerprint of
    /// `calibration` when the codes use it: what the quantizer writes, and what the SQL
    /// functions and Python describe their codes with.
    pub fn new(
        scheme: Scheme,
        source_column: &str,
        source_dims: usize,
        truncation: Option<Truncation>,
        params: &CodeParams,
        calibration: Option<&Calibration>,
    ) -> Self {
        let rabitq = matches!(scheme, Scheme::Rabitq | Scheme::RabitqEx);
        let ex = scheme == Scheme::RabitqEx;
        ColumnRecipe {
            format_version: FILE_FORMAT_VERSION,
            name: scheme.column_name(source_column, params.rabitq_bits),
            scheme,
            source_column: source_column.to_string(),
            source_dims,
            dims: params.dims,
            truncation,
            arrow_type: scheme.arrow_type(params).to_string(),
            encoding: scheme.encoding(params),
            int8_layout: (scheme == Scheme::Int8).then_some(params.int8_layout),
            threshold: (scheme == Scheme::Binary).then_some(params.threshold),
            rabitq_bits: ex.then_some(params.rabitq_bits),
            sign_column: ex.then(|| Scheme::Rabitq.column_name(source_column, 1)),
            rotation: rabitq.then_some(params.rotation),
            code_bits: rabitq.then(|| params.rotation.code_bits(params.dims)),
            range_shape: Some(params.shape).filter(|s| {
                matches!(scheme, Scheme::Int8 | Scheme::Int4) && *s != RangeShape::default()
            }),
            bytes_per_vector: scheme.width(params),
            calibration_fingerprint: calibration
                .filter(|_| scheme.uses_calibration(params))
                .map(|c| c.fingerprint().to_string()),
        }
    }

    /// The parameters the codes were made under (defaults for what the recipe does not
    /// record: no rotation without one).
    pub fn params(&self) -> CodeParams {
        let mut p = CodeParams::new(self.dims);
        p.int8_layout = self.int8_layout.unwrap_or_default();
        p.threshold = self.threshold.unwrap_or_default();
        p.rotation = self.rotation.unwrap_or(Rotation::None);
        p.rabitq_bits = self.rabitq_bits.unwrap_or(1);
        p.shape = self.range_shape.unwrap_or_default();
        p
    }

    /// Field metadata for this recipe and calibration.
    pub fn field_metadata(
        &self,
        calibration: Option<&Calibration>,
    ) -> Result<HashMap<String, String>> {
        let mut m = HashMap::new();
        m.insert(METADATA_KEY.to_string(), serde_json::to_string(self)?);
        if let Some(c) = calibration {
            m.insert(CALIBRATION_KEY.to_string(), serde_json::to_string(c)?);
        }
        Ok(m)
    }

    /// Reads the recipe (and calibration, when present) from field metadata.
    pub fn from_field_metadata(
        m: &HashMap<String, String>,
    ) -> Result<Option<(Self, Option<Calibration>)>> {
        let Some(r) = m.get(METADATA_KEY) else {
            return Ok(None);
        };
        let recipe: ColumnRecipe = serde_json::from_str(r)?;
        let cal = m
            .get(CALIBRATION_KEY)
            .map(|c| Calibration::from_json(c))
            .transpose()?;
        recipe.validate(cal.as_ref())?;
        Ok(Some((recipe, cal)))
    }

    /// Reads the recipe of `field` like [`ColumnRecipe::from_field_metadata`], and checks
    /// that the column's type holds codes of the recipe's width.
    pub fn from_field(field: &arrow_schema::Field) -> Result<Option<(Self, Option<Calibration>)>> {
        let found = Self::from_field_metadata(field.metadata())?;
        if let Some((r, _)) = &found {
            r.check_type(field.data_type()).map_err(|e| {
                Error::InvalidCalibration(format!("column {:?}: {e}", field.name()))
            })?;
        }
        Ok(found)
    }

    /// The rotation of RaBitQ codes (an error for a recipe without one; see
    /// [`ColumnRecipe::validate`]).
    pub fn rabitq_rotation(&self) -> Result<crate::codec::rabitq::Rotation> {
        self.rotation.ok_or_else(|| {
            Error::InvalidCalibration(format!(
                "recipe {:?}: RaBitQ codes without a rotation: cannot tell how they were made",
                self.name
            ))
        })
    }

    /// The codec that made (and decodes and scores) these codes, from the recipe and its
    /// calibration: an error when the scheme needs a calibration and none is given.
    pub fn codec(&self, cal: Option<&Calibration>) -> Result<SchemeCodec> {
        if matches!(self.scheme, Scheme::Rabitq | Scheme::RabitqEx) {
            let rotation = self.rabitq_rotation()?;
            let bits = rotation.code_bits(self.dims);
            if self.code_bits.is_some_and(|b| b != bits) {
                return Err(Error::InvalidCalibration(format!(
                    "recipe {:?}: {} code bits stored, {bits} from its rotation",
                    self.name,
                    self.code_bits.unwrap_or(0),
                )));
            }
        }
        self.scheme.codec(&self.params(), cal)
    }

    /// Checks the recipe's own fields and its calibration against each other: a supported
    /// format version, every number within its bound ([`ColumnRecipe::check_bounds`]), and a
    /// calibration of the recipe's dimension whose fingerprint is the one the recipe
    /// recorded. Tampered or mismatched metadata is an error here, before any codec is built
    /// or any kernel sees codes of the wrong width.
    pub fn validate(&self, cal: Option<&Calibration>) -> Result<()> {
        let bad = |m: String| {
            Err(Error::InvalidCalibration(format!(
                "recipe {:?}: {m}",
                self.name
            )))
        };
        if self.format_version == 0 || self.format_version > FILE_FORMAT_VERSION {
            return bad(format!(
                "format version {} is not supported (this build reads up to {FILE_FORMAT_VERSION})",
                self.format_version
            ));
        }
        // Every writer records the rotation of RaBitQ codes: a recipe without one cannot say
        // how its codes were made (one rule for CLI search, SQL and the estimator function).
        if matches!(self.scheme, Scheme::Rabitq | Scheme::RabitqEx) && self.rotation.is_none() {
            return bad("RaBitQ codes without a rotation: cannot tell how they were made".into());
        }
        if self.scheme == Scheme::RabitqEx && self.sign_column.is_none() {
            return bad("extra RaBitQ bits without the name of their sign column".into());
        }
        self.check_bounds()?;
        if let Some(c) = cal {
            if c.dim() != self.dims {
                return bad(format!(
                    "its calibration has dimension {}, the codes {}",
                    c.dim(),
                    self.dims
                ));
            }
            if let Some(fp) = &self.calibration_fingerprint {
                if fp != c.fingerprint() {
                    return bad(format!(
                        "its calibration's fingerprint {} is not the recorded {fp} (the calibration was changed)",
                        c.fingerprint()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Bits per RaBitQ code (`B`, the padded dimension) that this recipe's rotation gives
    /// its dimensions (None without a rotation).
    pub fn padded_bits(&self) -> Option<usize> {
        self.rotation.map(|r| r.code_bits(self.dims))
    }

    /// The one place every number a recipe carries is bounded
    /// ([`Error::RecipeOutOfRange`] names the field and the value): `dims` in
    /// `1..=`[`MAX_DIMS`], `source_dims` in `dims..=MAX_DIMS`, a truncation of `dims`,
    /// `rabitq_bits` in `1..=`[`crate::codec::rabitq_ex::MAX_BITS`] (2 or more for the
    /// extra bits), `rotation.rounds` in `1..=`[`crate::codec::rabitq::MAX_ROUNDS`],
    /// `code_bits` the rotation's padding of `dims`, and `bytes_per_vector` exactly the
    /// width of the scheme's codes of `dims` dimensions. Nothing a file says then reaches an
    /// allocation or a loop unbounded.
    pub fn check_bounds(&self) -> Result<()> {
        use crate::codec::rabitq::{Rotation, MAX_ROUNDS};
        use crate::codec::rabitq_ex::MAX_BITS;
        let out = |field: &'static str, value: String, allowed: String| {
            Err(Error::RecipeOutOfRange {
                recipe: self.name.clone(),
                field,
                value,
                allowed,
            })
        };
        let dims = self.dims;
        if !(1..=MAX_DIMS).contains(&dims) {
            return out("dims", dims.to_string(), format!("1..={MAX_DIMS}"));
        }
        if !(dims..=MAX_DIMS).contains(&self.source_dims) {
            return out(
                "source_dims",
                self.source_dims.to_string(),
                format!("{dims}..={MAX_DIMS} (at least dims)"),
            );
        }
        if let Some(t) = self.truncation.filter(|t| t.dims != dims) {
            return out(
                "truncation.dims",
                t.dims.to_string(),
                format!("{dims} (the dims encoded)"),
            );
        }
        let bits = self.rabitq_bits;
        match (self.scheme, bits) {
            (Scheme::RabitqEx, b) if !b.is_some_and(|b| (2..=MAX_BITS).contains(&b)) => {
                return out(
                    "rabitq_bits",
                    b.map_or("none".into(), |b| b.to_string()),
                    format!("2..={MAX_BITS} (extra bits)"),
                );
            }
            (_, Some(b)) if !(1..=MAX_BITS).contains(&b) => {
                return out("rabitq_bits", b.to_string(), format!("1..={MAX_BITS}"));
            }
            _ => {}
        }
        if let Some(Rotation::Hadamard { rounds, .. }) = self.rotation {
            if !(1..=MAX_ROUNDS).contains(&rounds) {
                return out(
                    "rotation.rounds",
                    rounds.to_string(),
                    format!("1..={MAX_ROUNDS}"),
                );
            }
        }
        let padded = self.padded_bits();
        match (self.code_bits, padded) {
            (Some(b), Some(p)) if b != p => {
                return out(
                    "code_bits",
                    b.to_string(),
                    format!("{p} (the rotation's padding of {dims} dimensions)"),
                );
            }
            (Some(b), None) if !(1..=MAX_DIMS).contains(&b) => {
                return out("code_bits", b.to_string(), format!("1..={MAX_DIMS}"));
            }
            _ => {}
        }
        let expected = self.scheme.width(&self.params());
        if self.bytes_per_vector != expected {
            return out(
                "bytes_per_vector",
                self.bytes_per_vector.to_string(),
                format!("{expected} ({} codes of {dims} dimensions)", self.scheme),
            );
        }
        Ok(())
    }

    /// Checks that a column of type `dt` holds this recipe's codes.
    pub fn check_type(&self, dt: &arrow_schema::DataType) -> Result<()> {
        use arrow_schema::DataType as T;
        let width = match dt {
            T::FixedSizeBinary(w) => Some(*w as usize),
            T::FixedSizeList(item, n) => item
                .data_type()
                .primitive_width()
                .map(|b| b * (*n).max(0) as usize),
            _ => None,
        };
        if width != Some(self.bytes_per_vector) {
            return Err(Error::InvalidCalibration(format!(
                "type {dt} does not hold {} codes of {} bytes (recipe {:?})",
                self.scheme, self.bytes_per_vector, self.name
            )));
        }
        Ok(())
    }
}

/// Clipping observed in one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    /// The recipe.
    #[serde(flatten)]
    pub recipe: ColumnRecipe,
    /// Values clipped to the calibrated range (int8, int4) or to the format's finite range
    /// (f16, bf16).
    pub clipped: u64,
    /// `clipped / values encoded` (0 for schemes that do not clip).
    pub clip_rate: f64,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLineage {
    /// Path as given (or found under a given directory).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows.
    pub rows: u64,
}

/// Where the rows of a file came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The float column the codes were made from.
    pub source_column: String,
    /// Every input of the job, in order.
    pub inputs: Vec<InputLineage>,
    /// Rows in all inputs.
    pub input_rows: u64,
    /// Index of the first row of this file among all input rows.
    pub first_row: u64,
    /// This file's part number, when the output was split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
}

/// The footer metadata of an embquant Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMetadata {
    /// Metadata format version.
    pub format_version: u32,
    /// Version of the embquant that wrote the file.
    pub embquant_version: String,
    /// Rows in this file.
    pub rows: u64,
    /// The quantized columns with their clip counts in this file.
    pub columns: Vec<ColumnSummary>,
    /// The calibration used.
    pub calibration: Calibration,
    /// Lineage.
    pub lineage: Lineage,
}

impl FileMetadata {
    /// JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Parses and validates (the calibration's fingerprint must match).
    pub fn from_json(s: &str) -> Result<Self> {
        let m: FileMetadata = serde_json::from_str(s)?;
        if m.format_version == 0 || m.format_version > FILE_FORMAT_VERSION {
            return Err(Error::InvalidCalibration(format!(
                "embquant metadata version {} is not supported (this build reads up to {FILE_FORMAT_VERSION})",
                m.format_version
            )));
        }
        // Re-validate the embedded calibration (fingerprint, lengths), and bound every
        // recipe's numbers like a field's.
        Calibration::from_json(&serde_json::to_string(&m.calibration)?)?;
        for c in &m.columns {
            c.recipe.validate(None)?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Array;
    use arrow_schema::{Field, Schema};
    use proptest::prelude::*;

    use super::*;
    use crate::codec::rabitq::{Rotation, MAX_ROUNDS};
    use crate::codec::tests::calibrate;
    use crate::quantizer::{QuantizeOptions, Quantizer};
    use crate::testutil::vectors_array;

    /// The fields of 24-d vectors quantized to every scheme (rabitq with 4 bits).
    fn fields() -> Vec<Field> {
        let v = vectors_array(50, 24, 3, 0.0);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "emb",
            v.data_type().clone(),
            true,
        )]));
        let mut o = QuantizeOptions::new("emb");
        o.schemes = Scheme::ALL.to_vec();
        o.rabitq_bits = 4;
        let q = Quantizer::try_new(schema, calibrate(&v), o).unwrap();
        q.schema()
            .fields()
            .iter()
            .skip(1)
            .map(|f| f.as_ref().clone())
            .collect()
    }

    #[test]
    fn a_range_shape_is_recorded_and_must_match_the_calibration() {
        let v = vectors_array(50, 24, 3, 0.0);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "emb",
            v.data_type().clone(),
            true,
        )]));
        let plain = calibrate(&v);
        let shape = crate::RangeShape {
            symmetric: true,
            per_tensor: true,
        };
        let shaped = plain.with_shape(shape);
        let mut o = QuantizeOptions::new("emb");
        o.schemes = vec![Scheme::Int8, Scheme::Int4, Scheme::Binary];
        let q = Quantizer::try_new(schema.clone(), shaped.clone(), o.clone()).unwrap();
        let batch = arrow_array::RecordBatch::try_new(schema, vec![Arc::new(v)]).unwrap();
        let out = q.quantize(&batch).unwrap().batch;
        for f in out.schema().fields().iter().skip(1) {
            let (r, cal) = ColumnRecipe::from_field(f).unwrap().unwrap();
            let affine = matches!(r.scheme, Scheme::Int8 | Scheme::Int4);
            assert_eq!(r.range_shape, affine.then_some(shape), "{}", f.name());
            assert_eq!(
                r.encoding.starts_with("symmetric"),
                affine,
                "{}",
                r.encoding
            );
            // The codes decode through the recipe with their own calibration...
            let codes = out.column_by_name(f.name()).unwrap();
            r.codec(cal.as_ref())
                .unwrap()
                .decode(codes.as_ref())
                .unwrap();
            // ...and not with a calibration of another shape.
            if affine {
                assert!(matches!(
                    r.codec(Some(&plain)),
                    Err(Error::InvalidCalibration(_))
                ));
            }
        }
    }

    fn field(name: &str) -> Field {
        fields().into_iter().find(|f| f.name() == name).unwrap()
    }

    /// `f` with its recipe edited by `edit`.
    fn edited(f: &Field, edit: impl Fn(&mut serde_json::Value)) -> Field {
        let mut m = f.metadata().clone();
        let mut r: serde_json::Value = serde_json::from_str(&m[METADATA_KEY]).unwrap();
        edit(&mut r);
        m.insert(METADATA_KEY.into(), r.to_string());
        f.clone().with_metadata(m)
    }

    /// The field and value of the `RecipeOutOfRange` error `f` gives.
    fn out_of_range(f: &Field) -> (&'static str, String) {
        match ColumnRecipe::from_field(f) {
            Err(Error::RecipeOutOfRange { field, value, .. }) => (field, value),
            other => panic!("expected RecipeOutOfRange, got {other:?}"),
        }
    }

    #[test]
    fn written_recipes_validate_and_their_numbers_are_bounded() {
        let fs = fields();
        assert_eq!(fs.len(), 7, "{fs:?}");
        for f in &fs {
            let (r, _) = ColumnRecipe::from_field(f).unwrap().unwrap();
            r.check_bounds().unwrap();
        }
        let rq = field("emb_rq");
        let rq4 = field("emb_rq4");
        // The crafted rounds that aborted (1e9) or hung (1e6) search: refused at once,
        // naming the field and the value, before any codec allocates its sign flips.
        for (f, rounds) in [
            (&rq, 1_000_000_000u64),
            (&rq4, 1_000_000),
            (&rq, 17),
            (&rq, 0),
        ] {
            let bad = edited(f, |r| r["rotation"]["rounds"] = rounds.into());
            let e = ColumnRecipe::from_field(&bad).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("rotation.rounds = {rounds}"))
                    && e.to_string().contains(&format!("1..={MAX_ROUNDS}")),
                "{e}"
            );
        }
        // The most rounds allowed still builds a codec.
        let most = edited(&rq, |r| r["rotation"]["rounds"] = MAX_ROUNDS.into());
        let (r, cal) = ColumnRecipe::from_field(&most).unwrap().unwrap();
        assert!(matches!(
            r.codec(cal.as_ref()).unwrap(),
            SchemeCodec::Rabitq(_)
        ));
        // dims, source dims, truncation, bits, padded bits, widths.
        let int8 = field("emb_int8");
        let cases: Vec<(Field, &str, &str)> = vec![
            (
                edited(&int8, |r| r["dims"] = 70_000.into()),
                "dims",
                "70000",
            ),
            (edited(&int8, |r| r["dims"] = 0.into()), "dims", "0"),
            (
                edited(&int8, |r| r["source_dims"] = (1u64 << 40).into()),
                "source_dims",
                "1099511627776",
            ),
            (
                edited(&int8, |r| r["source_dims"] = 3.into()),
                "source_dims",
                "3",
            ),
            (
                edited(&int8, |r| {
                    r["truncation"] = serde_json::json!({"dims": 30, "normalized": false})
                }),
                "truncation.dims",
                "30",
            ),
            (
                edited(&rq4, |r| r["rabitq_bits"] = 9.into()),
                "rabitq_bits",
                "9",
            ),
            (
                edited(&rq4, |r| r["rabitq_bits"] = 1.into()),
                "rabitq_bits",
                "1",
            ),
            (
                edited(&rq4, |r| r["rabitq_bits"] = serde_json::Value::Null),
                "rabitq_bits",
                "none",
            ),
            (
                edited(&rq, |r| r["code_bits"] = 64.into()),
                "code_bits",
                "64",
            ),
            (
                edited(&rq, |r| r["bytes_per_vector"] = 4096.into()),
                "bytes_per_vector",
                "4096",
            ),
            (
                edited(&int8, |r| r["bytes_per_vector"] = 25.into()),
                "bytes_per_vector",
                "25",
            ),
        ];
        for (f, field, value) in &cases {
            assert_eq!(out_of_range(f), (*field, value.to_string()));
        }
        // The message names the recipe, the field, the value and what is allowed.
        let e = ColumnRecipe::from_field(&cases[0].0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"emb_int8\"") && e.contains("dims = 70000") && e.contains("1..=65536"),
            "{e}"
        );
    }

    #[test]
    fn footer_recipes_are_bounded_too() {
        let v = vectors_array(10, 24, 3, 0.0);
        let cal = calibrate(&v);
        let (recipe, _) = ColumnRecipe::from_field(&field("emb_rq")).unwrap().unwrap();
        let mut m = FileMetadata {
            format_version: FILE_FORMAT_VERSION,
            embquant_version: "test".into(),
            rows: 10,
            columns: vec![ColumnSummary {
                recipe,
                clipped: 0,
                clip_rate: 0.0,
            }],
            calibration: cal,
            lineage: Lineage {
                source_column: "emb".into(),
                inputs: vec![],
                input_rows: 10,
                first_row: 0,
                part: None,
            },
        };
        FileMetadata::from_json(&m.to_json().unwrap()).unwrap();
        m.columns[0].recipe.rotation = Some(Rotation::Hadamard {
            rounds: 1_000_000_000,
            seed: 1,
        });
        let e = FileMetadata::from_json(&m.to_json().unwrap()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::RecipeOutOfRange {
                    field: "rotation.rounds",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn sixteen_bit_floats_report_their_clip_rate() {
        for s in [Scheme::Int8, Scheme::Int4, Scheme::F16, Scheme::Bf16] {
            assert!(s.clips(), "{s}");
        }
        for s in [Scheme::Binary, Scheme::Rabitq, Scheme::RabitqEx] {
            assert!(!s.clips(), "{s}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any rounds and dims a recipe may carry: accepted exactly within the bounds, and
        /// never a panic.
        #[test]
        fn rounds_and_dims_are_accepted_exactly_within_bounds(
            rounds in prop_oneof![0u32..40, any::<u32>()],
            dims in prop_oneof![0usize..100, any::<u32>().prop_map(|d| d as usize)],
        ) {
            let (mut r, _) = ColumnRecipe::from_field(&field("emb_rq")).unwrap().unwrap();
            r.rotation = Some(Rotation::Hadamard { rounds, seed: 7 });
            r.dims = dims;
            r.source_dims = dims;
            let b = dims.max(1).next_power_of_two().max(8);
            r.code_bits = Some(b);
            r.bytes_per_vector = b / 8 + 8;
            let ok = (1..=MAX_ROUNDS).contains(&rounds) && (1..=MAX_DIMS).contains(&dims);
            prop_assert_eq!(r.validate(None).is_ok(), ok, "rounds {} dims {}", rounds, dims);
        }
    }
}
