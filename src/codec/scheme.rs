//! The scheme table: one row per code scheme saying its name, the suffix of its column,
//! the width and Arrow type of its codes, how they are encoded, whether they clip and use
//! the calibration, and how its codec is built. The quantizer, recipes and their bounds
//! checks, the SQL functions, Python, the recall report and search all ask this table; a
//! new scheme is its codec's file plus one row here (and a variant of [`Scheme`]).
//!
//! ```
//! use embquant::codec::scheme::{CodeParams, Scheme};
//!
//! let mut p = CodeParams::new(384);
//! p.rabitq_bits = 4;
//! assert_eq!(Scheme::Int4.width(&p), 192);
//! assert_eq!(Scheme::Rabitq.width(&p), 512 / 8 + 8); // padded to 512 bits, two f32
//! assert_eq!(Scheme::RabitqEx.width(&p), 3 * 512 / 8 + 8); // three extra bit planes
//! assert_eq!("bf16".parse::<Scheme>()?, Scheme::Bf16);
//! # Ok::<(), embquant::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, FixedSizeBinaryArray, FixedSizeListArray};
use arrow_schema::DataType;
use serde::{Deserialize, Serialize};

use super::binary::{BinaryCodec, BinaryThreshold};
use super::half::{HalfCodec, HalfKind};
use super::int4::Int4Codec;
use super::int8::{Int8Codec, Int8Layout};
use super::rabitq::{RabitqCodec, Rotation};
use super::rabitq_ex::RabitqExCodec;
use super::Encoded;
use crate::calibration::{Calibration, RangeShape};
use crate::error::{Error, Result};

/// A quantization scheme, as named on the command line and in the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
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

/// What a column's codes depend on besides the calibration: the encoded dimensions and the
/// parameters of the schemes that take any (each scheme reads only its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeParams {
    /// Dimensions encoded.
    pub dims: usize,
    /// Layout of int8 codes.
    pub int8_layout: Int8Layout,
    /// Threshold of binary codes.
    pub threshold: BinaryThreshold,
    /// Rotation of RaBitQ codes.
    pub rotation: Rotation,
    /// Bits per dimension of RaBitQ codes (2 to 8 for the extra-bits column).
    pub rabitq_bits: u8,
    /// The shape of the calibration's ranges (int8 and int4 codes: a symmetric one puts a
    /// level at zero); the codes' calibration must have it.
    pub shape: RangeShape,
}

impl CodeParams {
    /// The defaults for `dims` dimensions: int8 as `FixedSizeBinary`, sign bits, the default
    /// rotation, 1-bit RaBitQ.
    pub fn new(dims: usize) -> Self {
        CodeParams {
            dims,
            int8_layout: Int8Layout::default(),
            threshold: BinaryThreshold::default(),
            rotation: Rotation::default(),
            rabitq_bits: 1,
            shape: RangeShape::default(),
        }
    }
}

/// The codec of a code column, built by [`Scheme::codec`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SchemeCodec {
    /// Sign bits against a threshold.
    Binary(BinaryCodec),
    /// Per-dimension affine int8, in its layout.
    Int8(Int8Codec, Int8Layout),
    /// Per-dimension affine int4.
    Int4(Int4Codec),
    /// f16 or bf16.
    Half(HalfCodec),
    /// 1-bit RaBitQ with its rotation.
    Rabitq(RabitqCodec),
    /// The extra bits of multi-bit RaBitQ (scored with the sign column).
    RabitqEx(RabitqExCodec),
}

impl SchemeCodec {
    /// Encodes a vector column into this scheme's code columns: one, or for the extra bits
    /// of multi-bit RaBitQ two (the sign bits with their factors, then the extra bits), in
    /// the Arrow type [`Scheme::arrow_type`] gives.
    pub fn encode(&self, vectors: &dyn Array) -> Result<Vec<Encoded>> {
        Ok(match self {
            SchemeCodec::Int8(c, Int8Layout::List) => vec![c.encode(vectors)?],
            SchemeCodec::Int8(c, Int8Layout::Binary) => {
                let e = c.encode(vectors)?;
                let list = e.array.as_fixed_size_list();
                let bytes = list.values().to_data().buffers()[0].clone();
                let fsb =
                    FixedSizeBinaryArray::new(list.value_length(), bytes, list.nulls().cloned());
                vec![Encoded {
                    array: Arc::new(fsb),
                    clipped: e.clipped,
                }]
            }
            SchemeCodec::Int4(c) => vec![c.encode(vectors)?],
            SchemeCodec::Binary(c) => vec![c.encode(vectors)?],
            SchemeCodec::Half(c) => vec![c.encode(vectors)?],
            SchemeCodec::Rabitq(c) => vec![c.encode(vectors)?],
            SchemeCodec::RabitqEx(c) => {
                let (signs, extra) = c.encode(vectors)?;
                vec![signs, extra]
            }
        })
    }

    /// Decodes codes back to float vectors (the extra bits of multi-bit RaBitQ only with
    /// their sign column: [`RabitqExCodec::decode`]).
    pub fn decode(&self, codes: &dyn Array) -> Result<FixedSizeListArray> {
        match self {
            SchemeCodec::Int8(c, _) => c.decode(codes),
            SchemeCodec::Int4(c) => c.decode(codes),
            SchemeCodec::Binary(c) => c.decode(codes),
            SchemeCodec::Half(c) => c.decode(codes),
            SchemeCodec::Rabitq(c) => c.decode(codes),
            SchemeCodec::RabitqEx(_) => Err(Error::BadArgument {
                name: "codes".into(),
                problem: "extra RaBitQ bits decode together with their sign column (RabitqExCodec::decode)"
                    .into(),
            }),
        }
    }
}

/// One row of the table.
struct Row {
    scheme: Scheme,
    name: &'static str,
    suffix: &'static str,
    clips: bool,
    uses_calibration: fn(&CodeParams) -> bool,
    width: fn(&CodeParams) -> usize,
    /// The Arrow type of codes `width` bytes wide (None: `FixedSizeBinary(width)`).
    arrow_type: fn(&CodeParams) -> Option<DataType>,
    encoding: fn(&CodeParams) -> String,
    codec: fn(&CodeParams, Option<&Calibration>) -> Result<SchemeCodec>,
}

fn need(cal: Option<&Calibration>) -> Result<&Calibration> {
    cal.ok_or(Error::MissingCalibrationData(
        "the codes' calibration (field metadata embquant.calibration)",
    ))
}

/// The calibration of affine (int8, int4) codes, which must have the ranges' shape the
/// codes were made with.
fn affine<'a>(p: &CodeParams, cal: Option<&'a Calibration>) -> Result<&'a Calibration> {
    let cal = need(cal)?;
    if cal.shape() != p.shape {
        return Err(Error::InvalidCalibration(format!(
            "the codes were made on ranges shaped {:?}, the calibration's are {:?}",
            p.shape,
            cal.shape()
        )));
    }
    Ok(cal)
}

fn always(_: &CodeParams) -> bool {
    true
}

fn never(_: &CodeParams) -> bool {
    false
}

fn fixed_binary(_: &CodeParams) -> Option<DataType> {
    None
}

fn half_list(p: &CodeParams) -> Option<DataType> {
    Some(DataType::new_fixed_size_list(
        DataType::Float16,
        p.dims as i32,
        false,
    ))
}

fn rabitq_base(p: &CodeParams, cal: Option<&Calibration>) -> Result<RabitqCodec> {
    Ok(RabitqCodec::new(need(cal)?, p.rotation))
}

/// The table, in [`Scheme`] order.
const TABLE: [Row; 7] = [
    Row {
        scheme: Scheme::Int8,
        name: "int8",
        suffix: "_int8",
        clips: true,
        uses_calibration: always,
        width: |p| p.dims,
        arrow_type: |p| match p.int8_layout {
            Int8Layout::Binary => None,
            Int8Layout::List => Some(DataType::new_fixed_size_list(
                DataType::Int8,
                p.dims as i32,
                false,
            )),
        },
        encoding: |p| super::int8::encoding(p.int8_layout, p.shape),
        codec: |p, cal| {
            Ok(SchemeCodec::Int8(
                Int8Codec::new(affine(p, cal)?),
                p.int8_layout,
            ))
        },
    },
    Row {
        scheme: Scheme::Int4,
        name: "int4",
        suffix: "_int4",
        clips: true,
        uses_calibration: always,
        width: |p| super::int4::width(p.dims),
        arrow_type: fixed_binary,
        encoding: |p| super::int4::encoding(p.shape),
        codec: |p, cal| Ok(SchemeCodec::Int4(Int4Codec::new(affine(p, cal)?))),
    },
    Row {
        scheme: Scheme::Binary,
        name: "binary",
        suffix: "_bin",
        clips: false,
        uses_calibration: |p| p.threshold != BinaryThreshold::Zero,
        width: |p| super::binary::width(p.dims),
        arrow_type: fixed_binary,
        encoding: |_| super::binary::ENCODING.into(),
        codec: |p, cal| {
            Ok(SchemeCodec::Binary(match p.threshold {
                BinaryThreshold::Zero => BinaryCodec::new(p.dims),
                t => BinaryCodec::with_calibration(need(cal)?, t)?,
            }))
        },
    },
    Row {
        scheme: Scheme::F16,
        name: "f16",
        suffix: "_f16",
        clips: true,
        uses_calibration: never,
        width: |p| 2 * p.dims,
        arrow_type: half_list,
        encoding: |_| super::half::encoding(HalfKind::F16).into(),
        codec: |p, _| Ok(SchemeCodec::Half(HalfCodec::new(p.dims, HalfKind::F16))),
    },
    Row {
        scheme: Scheme::Bf16,
        name: "bf16",
        suffix: "_bf16",
        clips: true,
        uses_calibration: never,
        width: |p| 2 * p.dims,
        arrow_type: half_list,
        encoding: |_| super::half::encoding(HalfKind::Bf16).into(),
        codec: |p, _| Ok(SchemeCodec::Half(HalfCodec::new(p.dims, HalfKind::Bf16))),
    },
    Row {
        scheme: Scheme::Rabitq,
        name: "rabitq",
        suffix: "_rq",
        clips: false,
        uses_calibration: always,
        width: |p| super::rabitq::code_width(p.rotation.code_bits(p.dims)),
        arrow_type: fixed_binary,
        encoding: |_| super::rabitq::ENCODING.into(),
        codec: |p, cal| Ok(SchemeCodec::Rabitq(rabitq_base(p, cal)?)),
    },
    Row {
        scheme: Scheme::RabitqEx,
        name: "rabitq_ex",
        suffix: "_rq",
        clips: false,
        uses_calibration: always,
        width: |p| super::rabitq_ex::extra_width(p.rotation.code_bits(p.dims), p.rabitq_bits),
        arrow_type: fixed_binary,
        encoding: |_| super::rabitq_ex::ENCODING.into(),
        codec: |p, cal| {
            Ok(SchemeCodec::RabitqEx(RabitqExCodec::new(
                rabitq_base(p, cal)?,
                p.rabitq_bits,
            )?))
        },
    },
];

impl Scheme {
    /// The schemes a job can be asked for (the extra bits of multi-bit RaBitQ come with
    /// `rabitq` and its bits).
    pub const ALL: [Scheme; 6] = [
        Scheme::Int8,
        Scheme::Int4,
        Scheme::Binary,
        Scheme::F16,
        Scheme::Bf16,
        Scheme::Rabitq,
    ];

    fn row(self) -> &'static Row {
        let row = &TABLE[self as usize];
        debug_assert_eq!(row.scheme, self, "the table is in Scheme order");
        row
    }

    /// Output column suffix: `<column>_int8`, `_int4`, `_bin`, `_f16`, `_bf16`, `_rq`
    /// (`_rq` followed by the bits for the extra bits of multi-bit RaBitQ: see
    /// [`Scheme::column_name`]).
    pub fn suffix(self) -> &'static str {
        self.row().suffix
    }

    /// The code column of `source` for this scheme: `<source><suffix>`, and
    /// `<source>_rq<bits>` for the extra bits of `bits`-bit RaBitQ.
    pub fn column_name(self, source: &str, rabitq_bits: u8) -> String {
        match self {
            Scheme::RabitqEx => format!("{source}{}{rabitq_bits}", self.suffix()),
            s => format!("{source}{}", s.suffix()),
        }
    }

    /// Whether the scheme clips values to a range, and so reports a clip rate: int8 and
    /// int4 to the calibrated range, f16 and bf16 to the format's finite range (values
    /// beyond ±65504, or beyond bf16's largest value near ±3.39e38, would overflow to
    /// infinity: they are clipped to the largest value and counted).
    pub fn clips(self) -> bool {
        self.row().clips
    }

    /// Whether codes of this scheme under `p` are made with the calibration (and so record
    /// its fingerprint).
    pub fn uses_calibration(self, p: &CodeParams) -> bool {
        (self.row().uses_calibration)(p)
    }

    /// Bytes per code under `p`.
    pub fn width(self, p: &CodeParams) -> usize {
        (self.row().width)(p)
    }

    /// The Arrow type of the codes under `p`.
    pub fn arrow_type(self, p: &CodeParams) -> DataType {
        (self.row().arrow_type)(p).unwrap_or(DataType::FixedSizeBinary(self.width(p) as i32))
    }

    /// How values map to codes and how codes are packed (the recipe's `encoding`).
    pub fn encoding(self, p: &CodeParams) -> String {
        (self.row().encoding)(p)
    }

    /// The codec of codes made under `p` with `cal` (an error when the scheme needs a
    /// calibration and none is given).
    pub fn codec(self, p: &CodeParams, cal: Option<&Calibration>) -> Result<SchemeCodec> {
        (self.row().codec)(p, cal)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.row().name)
    }
}

impl FromStr for Scheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Scheme::ALL
            .into_iter()
            .find(|k| k.row().name == s.trim())
            .ok_or_else(|| Error::BadArgument {
                name: "scheme".into(),
                problem: format!("{s:?}: expected int8, int4, binary, f16, bf16 or rabitq"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_scheme_order_and_names_round_trip() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.scheme as usize, i);
        }
        for s in Scheme::ALL {
            assert_eq!(s.to_string().parse::<Scheme>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
        }
        assert_err!(
            "rabitq_ex".parse::<Scheme>(),
            crate::Error::BadArgument { .. }
        );
    }

    #[test]
    fn widths_are_the_codecs_widths() {
        for dims in [1, 5, 9, 383, 384] {
            let cal =
                crate::codec::tests::calibrate(&crate::testutil::vectors_array(20, dims, 1, 0.0));
            for bits in 2..=8 {
                for rotation in [Rotation::default(), Rotation::None] {
                    let p = CodeParams {
                        rabitq_bits: bits,
                        rotation,
                        ..CodeParams::new(dims)
                    };
                    for s in Scheme::ALL.into_iter().chain([Scheme::RabitqEx]) {
                        let w = match s.codec(&p, Some(&cal)).unwrap() {
                            SchemeCodec::Binary(c) => c.width(),
                            SchemeCodec::Int8(..) => dims,
                            SchemeCodec::Int4(c) => c.width(),
                            SchemeCodec::Half(_) => 2 * dims,
                            SchemeCodec::Rabitq(c) => c.width(),
                            SchemeCodec::RabitqEx(c) => c.width(),
                        };
                        assert_eq!(s.width(&p), w, "{s} {p:?}");
                    }
                }
            }
        }
    }
}
