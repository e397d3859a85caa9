//! Tiered retrieval: a coarse scan over compact codes keeps `k x factor` candidates, finer
//! tiers rescore them, the last tier gives the top-k.
//!
//! The items are here, one path each: [`Corpus`] (the in-memory corpus of codes, searched by
//! a chain of [`TierSpec`]s), [`CorpusBuilder`] (fed batch by batch from the columns
//! [`CodeLayout`] finds in a schema), [`load_corpus`] (from Parquet), [`QueryReader`] (the
//! one query rule of every front end), [`results`] (hits as rows) and [`QueryReport`] (what
//! the error bound pruned and whether the top-k is certified). The modules behind them
//! (chain parsing, top-k selection, the bound, the tiers' scans) are internal.
//!
//! ```
//! use embquant::search::{Codes, Corpus, TierSpec};
//! use embquant::{BinaryCodec, Calibration, Int8Codec, RangeMethod, Stats, StatsOptions};
//! # use std::sync::Arc;
//! # use arrow_array::{FixedSizeListArray, Float32Array};
//! # use arrow_schema::{DataType, Field};
//!
//! let (rows, dim) = (100, 8);
//! let values: Vec<f32> = (0..rows * dim).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
//! # let item = Arc::new(Field::new_list_field(DataType::Float32, false));
//! # let array = FixedSizeListArray::new(item, dim as i32, Arc::new(Float32Array::from(values.clone())), None);
//! let cal = Calibration::from_stats(&Stats::compute(&array, &StatsOptions::default())?, RangeMethod::MinMax)?;
//! let (bits, int8) = (BinaryCodec::new(dim), Int8Codec::new(&cal));
//! let mut b = vec![0u8; rows * bits.width()];
//! bits.encode_slice(&values, &mut b).unwrap();
//! let mut c = vec![0u8; rows * dim];
//! int8.encode_slice(&values, &mut c, 0x80).unwrap();
//! let mut corpus = Corpus::new(rows, dim);
//! corpus.insert(Codes::Binary(b, bits))?;
//! corpus.insert(Codes::Int8(c.into_iter().map(|x| x as i8).collect(), int8))?;
//! let hits = corpus.search(&values[..dim], 5, &TierSpec::parse_chain("binary:4,int8")?)?;
//! assert_eq!(hits[0].len(), 5);
//! # Ok::<(), embquant::Error>(())
//! ```

pub(crate) mod bound;
pub(crate) mod build;
pub(crate) mod chain;
pub(crate) mod floats;
pub(crate) mod layout;
#[cfg(feature = "job")]
pub(crate) mod load;
pub(crate) mod queries;
pub mod results;
mod select;
mod tier;
pub(crate) mod tiered;
pub(crate) mod topk;

pub use bound::QueryReport;
pub use build::{CorpusBuilder, LoadedCorpus};
pub use chain::{Hit, RabitqBits, Tier, TierSpec};
pub use floats::{FloatRows, InMemoryFloats};
pub use layout::{float_column, is_float_vector, CodeLayout};
#[cfg(feature = "job")]
pub use load::{load_corpus, ParquetFloats};
pub use queries::{QueryReader, QuerySet};
pub use tier::Codes;
pub use tiered::{Corpus, PREFILTER_EPS0};
