//! Tiered retrieval: a coarse scan over compact codes keeps `k x factor` candidates, finer
//! tiers rescore them, the last tier gives the top-k.
//!
//! - [`topk`]: bounded top-k selection with deterministic ties (lower row id first).
//! - [`tiered`]: the in-memory corpus of codes and the tier chain.

pub mod chain;
pub(crate) mod floats;
#[cfg(feature = "job")]
pub mod load;
pub mod results;
mod scan;
mod select;
pub mod tiered;
pub mod topk;

#[cfg(feature = "job")]
pub use load::{load_corpus, LoadedCorpus};
pub use tiered::{Corpus, Hit, Tier, TierSpec};
