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
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::error::{Error, Result};

/// Key of the recipe, both in field metadata and in the Parquet footer.
pub const METADATA_KEY: &str = "embquant";
/// Field metadata key holding the calibration JSON.
pub const CALIBRATION_KEY: &str = "embquant.calibration";
/// Version of the metadata written by this crate.
pub const FILE_FORMAT_VERSION: u32 = 1;

/// The largest vector dimension embquant reads from metadata (64Ki; models today stop at
/// a few thousand): a larger value in a recipe is tampering, not a model.
pub const MAX_DIMS: usize = 1 << 16;

/// A quantization scheme, as named on the command line and in the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// 8 bits per dimension.
    Int8,
    /// 4 bits per dimension.
    Int4,
    /// 1 bit per dimension.
    Binary,
    /// IEEE half precision.
    F16,
    /// bfloat16 (bit patterns in a Float16 column).
    Bf16,
    /// RaBitQ: 1 bit per (rotated) dimension plus two correction factors.
    Rabitq,
    /// The extra bits of multi-bit RaBitQ (`<column>_rq<b>`, beside the `rabitq` column of
    /// the same codes): chosen with `rabitq` and `rabitq_bits` >= 2, never alone.
    #[serde(rename = "rabitq_ex")]
    RabitqEx,
}

impl Scheme {
    /// All schemes.
    pub const ALL: [Scheme; 6] = [
        Scheme::Int8,
        Scheme::Int4,
        Scheme::Binary,
        Scheme::F16,
        Scheme::Bf16,
        Scheme::Rabitq,
    ];

    /// Output column suffix: `<column>_int8`, `_int4`, `_bin`, `_f16`, `_bf16`, `_rq`
    /// (`_rq` followed by the bits for the extra bits of multi-bit RaBitQ: see
    /// [`Scheme::column_name`]).
    pub fn suffix(self) -> &'static str {
        match self {
            Scheme::Int8 => "_int8",
            Scheme::Int4 => "_int4",
            Scheme::Binary => "_bin",
            Scheme::F16 => "_f16",
            Scheme::Bf16 => "_bf16",
            Scheme::Rabitq | Scheme::RabitqEx => "_rq",
        }
    }

    /// The code column of `source` for this scheme: `<source><suffix>`, and
    /// `<source>_rq<bits>` for the extra bits of `bits`-bit RaBitQ.
    pub fn column_name(self, source: &str, rabitq_bits: u8) -> String {
        match self {
            Scheme::RabitqEx => format!("{source}_rq{rabitq_bits}"),
            s => format!("{source}{}", s.suffix()),
        }
    }

    /// Whether the scheme clips to the calibrated range (and so reports a clip rate).
    pub fn clips(self) -> bool {
        matches!(self, Scheme::Int8 | Scheme::Int4)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Scheme::Int8 => "int8",
            Scheme::Int4 => "int4",
            Scheme::Binary => "binary",
            Scheme::F16 => "f16",
            Scheme::Bf16 => "bf16",
            Scheme::Rabitq => "rabitq",
            Scheme::RabitqEx => "rabitq_ex",
        };
        f.write_str(s)
    }
}

impl FromStr for Scheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Scheme::ALL
            .into_iter()
            .find(|k| k.to_string() == s.trim())
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "scheme {s:?}: expected int8, int4, binary, f16, bf16 or rabitq"
                ))
            })
    }
}

/// How int8 codes are laid out in Arrow / Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Int8Layout {
    /// `FixedSizeBinary(D)` holding the int8 bit patterns: one fixed-length value per row in
    /// Parquet (fast to read; see BENCHMARKS.md).
    #[default]
    Binary,
    /// `FixedSizeList<Int8, D>`: a Parquet LIST with per-element levels.
    List,
}

impl FromStr for Int8Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "binary" => Ok(Int8Layout::Binary),
            "list" => Ok(Int8Layout::List),
            _ => Err(Error::InvalidOption(format!(
                "int8 layout {s:?}: expected list or binary"
            ))),
        }
    }
}

/// Matryoshka truncation applied before encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// Dimensions kept.
    pub dims: usize,
    /// Whether the prefix was re-normalized to unit length.
    pub normalized: bool,
}

/// The codec of a stored code column, built by [`ColumnRecipe::codec`].
#[derive(Debug, Clone)]
pub enum RecipeCodec {
    /// Sign bits against a threshold.
    Binary(crate::codec::binary::BinaryCodec),
    /// Per-dimension affine int8.
    Int8(crate::codec::int8::Int8Codec),
    /// Per-dimension affine int4.
    Int4(crate::codec::int4::Int4Codec),
    /// f16 or bf16.
    Half(crate::codec::half::HalfCodec),
    /// 1-bit RaBitQ with its rotation.
    Rabitq(crate::codec::rabitq::RabitqCodec),
    /// The extra bits of multi-bit RaBitQ (scored with the sign column).
    RabitqEx(crate::codec::rabitq_ex::RabitqExCodec),
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
    /// Bits per code after padding (rabitq only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_bits: Option<usize>,
    /// Bytes per encoded vector.
    pub bytes_per_vector: usize,
    /// Fingerprint of the calibration the codes were made with (none for sign bits, f16, bf16).
    pub calibration_fingerprint: Option<String>,
}

impl ColumnRecipe {
    /// The encoding description for a scheme.
    pub fn encoding_for(scheme: Scheme, layout: Int8Layout) -> String {
        match scheme {
            Scheme::Int8 => format!(
                "per-dimension affine, 256 levels over [lo, hi], round half up, clipped; code = level - 128 (int8){}",
                if layout == Int8Layout::Binary { ", bytes are the int8 bit patterns in dimension order" } else { "" }
            ),
            Scheme::Int4 => "per-dimension affine, 16 levels over [lo, hi], round half up, clipped; two codes per byte, \
                 dimension 2j in the high nibble of byte j (high-nibble-first), odd D pads a zero low nibble"
                .into(),
            Scheme::Binary => "bit = value > threshold; packed MSB-first like numpy.packbits (dimension 8j+i is bit \
                 7-i of byte j), padding bits zero"
                .into(),
            Scheme::F16 => "IEEE 754 binary16, round to nearest even, clipped to +-65504".into(),
            Scheme::Bf16 => "bfloat16 bit patterns stored in a Float16 column, round to nearest even".into(),
            Scheme::Rabitq => "RaBitQ: r = P (x - mean), P the rotation (randomized Hadamard: zero-pad to B = next power of \
                 two, rounds of seeded sign flips + orthonormal Walsh-Hadamard), bits = r > 0 packed MSB-first (B / 8 bytes), \
                 then f32 LE |r| and f32 LE ip = sum|r_i| / (sqrt(B) |r|); estimate <q, x> = <q, mean> + |r| / (ip sqrt(B)) \
                 * sum_i (P q)_i (2 b_i - 1)"
                .into(),
            Scheme::RabitqEx => "Extended RaBitQ extra bits (with the rabitq column of sign_column): levels k_i = min(floor(t |r_i| / |r|), \
                 2^e - 1), e = bits - 1, t maximizing <y, r> / |y| for y_i = sign(r_i) (k_i + 1/2); e bit planes of B / 8 bytes, \
                 plane j holding bit e-1-j of k'_i = (b_i ? k_i : 2^e - 1 - k_i), packed MSB-first; then f32 LE scale = |r|^2 / <y, r> \
                 and f32 LE ip = <y, r> / (|y| |r|); estimate <q, x> = <q, mean> + scale * sum_i (P q)_i (2^e b_i + k'_i - (2^bits - 1) / 2)"
                .into(),
        }
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

    /// The 1-bit RaBitQ codec of this recipe's rotation, checked against its code bits.
    fn rabitq_base(&self, cal: &Calibration) -> Result<crate::codec::rabitq::RabitqCodec> {
        let c = crate::codec::rabitq::RabitqCodec::new(cal, self.rabitq_rotation()?);
        if self.code_bits.is_some_and(|b| b != c.bits()) {
            return Err(Error::InvalidCalibration(format!(
                "recipe {:?}: {} code bits stored, {} from its rotation",
                self.name,
                self.code_bits.unwrap_or(0),
                c.bits()
            )));
        }
        Ok(c)
    }

    /// The codec that made (and decodes and scores) these codes, from the recipe and its
    /// calibration: an error when the scheme needs a calibration and none is given.
    pub fn codec(&self, cal: Option<&Calibration>) -> Result<RecipeCodec> {
        use crate::codec::binary::{BinaryCodec, BinaryThreshold};
        let need = || {
            cal.ok_or(Error::MissingCalibrationData(
                "the codes' calibration (field metadata embquant.calibration)",
            ))
        };
        Ok(match self.scheme {
            Scheme::Binary => match self.threshold.unwrap_or_default() {
                BinaryThreshold::Zero => RecipeCodec::Binary(BinaryCodec::new(self.dims)),
                t => RecipeCodec::Binary(BinaryCodec::with_calibration(need()?, t)?),
            },
            Scheme::Int8 => RecipeCodec::Int8(crate::codec::int8::Int8Codec::new(need()?)),
            Scheme::Int4 => RecipeCodec::Int4(crate::codec::int4::Int4Codec::new(need()?)),
            Scheme::F16 | Scheme::Bf16 => RecipeCodec::Half(crate::codec::half::HalfCodec::new(
                self.dims,
                if self.scheme == Scheme::F16 {
                    crate::codec::half::HalfKind::F16
                } else {
                    crate::codec::half::HalfKind::Bf16
                },
            )),
            Scheme::Rabitq => RecipeCodec::Rabitq(self.rabitq_base(need()?)?),
            Scheme::RabitqEx => RecipeCodec::RabitqEx(crate::codec::rabitq_ex::RabitqExCodec::new(
                self.rabitq_base(need()?)?,
                self.rabitq_bits.unwrap_or(0),
            )?),
        })
    }

    /// Checks the recipe's own fields and its calibration against each other: a supported
    /// format version, dimensions within [`MAX_DIMS`], and a calibration of the recipe's
    /// dimension whose fingerprint is the one the recipe recorded. Tampered or mismatched
    /// metadata is an error here, before any kernel sees codes of the wrong width.
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
        if self.dims == 0 || self.dims > MAX_DIMS || self.source_dims > MAX_DIMS {
            return bad(format!(
                "dims {} (of {}) outside 1..={MAX_DIMS}",
                self.dims, self.source_dims
            ));
        }
        if self.bytes_per_vector == 0 || self.bytes_per_vector > 8 * MAX_DIMS + 64 {
            return bad(format!(
                "bytes_per_vector {} is not plausible",
                self.bytes_per_vector
            ));
        }
        // Every writer records the rotation of RaBitQ codes: a recipe without one cannot say
        // how its codes were made (one rule for CLI search, SQL and the estimator function).
        if matches!(self.scheme, Scheme::Rabitq | Scheme::RabitqEx) && self.rotation.is_none() {
            return bad("RaBitQ codes without a rotation: cannot tell how they were made".into());
        }
        let expected = match self.scheme {
            Scheme::Int8 => Some(self.dims),
            Scheme::Int4 => Some(self.dims.div_ceil(2)),
            Scheme::Binary => Some(self.dims.div_ceil(8)),
            Scheme::F16 | Scheme::Bf16 => Some(2 * self.dims),
            // Padded sign bits plus two f32 factors (see codec::rabitq).
            Scheme::Rabitq => None,
            // Extra-bit planes of the padded bits plus two f32 factors (codec::rabitq_ex).
            Scheme::RabitqEx => {
                let bits = self.rabitq_bits.unwrap_or(0);
                if !(2..=crate::codec::rabitq_ex::MAX_BITS).contains(&bits) {
                    return bad(format!("rabitq_bits {bits}: expected 2 to 8"));
                }
                if self.sign_column.is_none() {
                    return bad("extra RaBitQ bits without the name of their sign column".into());
                }
                self.code_bits
                    .map(|b| (bits as usize - 1) * b.div_ceil(8) + 8)
                    .or(Some(0))
            }
        };
        if expected.is_some_and(|e| e != self.bytes_per_vector) {
            return bad(format!(
                "{} codes of {} dimensions take {} bytes, the recipe says {}",
                self.scheme,
                self.dims,
                expected.unwrap_or_default(),
                self.bytes_per_vector
            ));
        }
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
    /// Values clipped to the calibrated range.
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
        // Re-validate the embedded calibration (fingerprint, lengths).
        Calibration::from_json(&serde_json::to_string(&m.calibration)?)?;
        Ok(m)
    }
}
