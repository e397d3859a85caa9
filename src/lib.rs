//! # embquant
//!
//! Embedding quantization for Arrow arrays: per-dimension calibration computed streaming
//! and in parallel, and codecs that turn `FixedSizeList<Float32, D>` embedding columns into
//! compact fixed-size columns.
//!
//! - [`Stats`]: count, min, max, mean, variance and a mergeable quantile sketch per dimension.
//! - [`Calibration`]: ranges from the statistics by a [`RangeMethod`] (`minmax`,
//!   `quantile:p`, `meanstd:k`), versioned JSON with a content fingerprint.
//! - Codecs, one module each under [`codec`]: [`Int8Codec`] (and its `uint8` variant),
//!   [`Int4Codec`], [`BinaryCodec`] (sign or centered bits, `numpy.packbits` order),
//!   [`HalfCodec`] (`f16` and `bf16`), and Matryoshka truncation ([`codec::matryoshka`]).
//! - [`drift`]: how far new vectors moved from a stored calibration (clip rate, shifts in
//!   units of the calibrated range, re-calibration advice).
//! - [`search`]: tiered retrieval over a [`search::Corpus`] of codes, built batch by batch
//!   by [`search::CorpusBuilder`] from the columns [`search::CodeLayout`] finds in a schema;
//!   one query rule ([`search::QueryReader`]) for every front end.
//! - [`io`]: every input (byte sources and stores, discovery, the one Parquet reader) and
//!   every output (atomic files and directories).
//!
//! Data flows one way: slice kernels (`kernels`) -> Arrow arrays ([`codec`],
//! [`quantizer`]) -> record-batch streams and Parquet files ([`io`], `job`) -> search and
//! recall. Errors are one [`Error`] enum with a variant per kind of failure.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Array, FixedSizeListArray, Float32Array};
//! use arrow_schema::{DataType, Field};
//! use embquant::{Calibration, Int8Codec, RangeMethod, Stats, StatsOptions};
//!
//! let values = Float32Array::from(vec![0.1, -0.2, 0.3, 0.05, -0.1, 0.2]);
//! let field = Arc::new(Field::new_list_field(DataType::Float32, false));
//! let vectors = FixedSizeListArray::new(field, 3, Arc::new(values), None);
//!
//! let stats = Stats::compute(&vectors, &StatsOptions::default())?;
//! let cal = Calibration::from_stats(&stats, RangeMethod::MinMax)?;
//! let codec = Int8Codec::new(&cal);
//! let encoded = codec.encode(&vectors)?;
//! assert_eq!(encoded.clipped, 0);
//! let decoded = codec.decode(encoded.array.as_ref())?;
//! assert_eq!(decoded.len(), 2);
//! # Ok::<(), embquant::Error>(())
//! ```
//!
//! Features: `job` (default) adds Parquet: input discovery, the streaming calibrate and
//! quantize job, [`drift`], loading a quantized corpus for search, `quantize_stream`;
//! `recall` (default) adds recall reports. Without them (`default-features = false`) the
//! crate is the codecs, calibration, kernels and in-memory tiered search over Arrow arrays.
#![warn(missing_docs)]

// The Arrow and Parquet crates embquant is built on, for callers that need the same versions.
pub use arrow_array;
pub use arrow_schema;
#[cfg(feature = "job")]
pub use parquet;

/// `assert_err!(result, Pattern)`: `result` is an error whose kind
/// ([`Error::kind`](crate::Error::kind), past the file and column wrappers) matches `Pattern`.
#[cfg(test)]
macro_rules! assert_err {
    ($result:expr, $kind:pat) => {
        assert_err!($result, $kind, "")
    };
    ($result:expr, $kind:pat, $($msg:tt)+) => {
        match $result {
            Err(e) => assert!(
                matches!(e.kind(), $kind),
                "{}: {e:?} is not {}",
                format_args!($($msg)+),
                stringify!($kind)
            ),
            Ok(_) => panic!("{}: expected {}", format_args!($($msg)+), stringify!($kind)),
        }
    };
}

pub mod calibration;
pub mod codec;
#[cfg(feature = "job")]
pub mod drift;
pub mod error;
/// Distances on slices, as the search and the SQL distance functions compute them (the
/// fast path the CPU allows, picked at run time; see [`simd`]).
///
/// ```
/// use embquant::distance::{cosine, dot, dot_i8, hamming, l2_squared};
///
/// assert_eq!(dot(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
/// assert_eq!(l2_squared(&[1.0, 2.0], &[3.0, 4.0]), 8.0);
/// assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
/// assert_eq!(hamming(&[0b1010_0000], &[0b0110_0000]), 2);
/// // int8 codes of a symmetric calibration (zero-point 0): their dot product is the scaled
/// // dot product of the vectors, with no zero-point terms.
/// assert_eq!(dot_i8(&[3, -2], &[4, 5]), 2);
/// ```
pub mod distance {
    pub use crate::kernels::dot_i8::dot_i8;
    pub use crate::kernels::float::{cosine, dot, l2_squared};
    pub use crate::kernels::hamming::hamming;
}
/// The kernels' scan layouts and scans for the benchmarks (`benches/`): not a stable API.
#[doc(hidden)]
pub mod bench {
    pub use crate::kernels::asym::weighted_i8_scan_group;
    pub use crate::kernels::fastscan::{NibbleBlocks, NibbleQuery};
    pub use crate::kernels::hamming::{hamming_scan, TransposedCodes};
    pub use crate::kernels::rabitq::{group_patterns, LutQuery, RabitqBlocks};
}
pub mod ids;
pub mod io;
#[cfg(feature = "job")]
pub mod job;
pub(crate) mod kernels;
pub mod metadata;
#[doc(hidden)]
pub mod panic_guard;
pub mod quantizer;
#[cfg(feature = "recall")]
pub mod recall;
pub mod search;
pub mod simd;
pub mod sketch;
pub mod stats;
#[cfg(feature = "job")]
pub(crate) mod tasks;
pub mod vectors;

#[cfg(test)]
pub(crate) mod testutil;

pub use calibration::{
    Calibration, CalibrationMethod, RangeMethod, RangeShape, CALIBRATION_FORMAT_VERSION,
};
pub use codec::binary::{BinaryCodec, BinaryThreshold};
pub use codec::half::{HalfCodec, HalfKind};
pub use codec::int4::Int4Codec;
pub use codec::int8::Int8Codec;
pub use codec::int8::Int8Layout;
pub use codec::matryoshka::{truncate, MatryoshkaOptions};
pub use codec::rabitq::{RabitqCodec, Rotation};
pub use codec::scheme::{CodeParams, Scheme};
pub use codec::Encoded;
pub use error::{Error, Result};
pub use metadata::{ColumnRecipe, FileMetadata, METADATA_KEY};
#[cfg(feature = "job")]
pub use quantizer::quantize_stream;
pub use quantizer::{QuantizeOptions, QuantizedBatch, Quantizer};
pub use stats::{Stats, StatsOptions};
pub use vectors::Vectors;
