//! Tiered retrieval: a coarse scan over compact codes keeps `k x factor` candidates, finer
//! tiers rescore them, the last tier gives the top-k.
//!
//! - [`topk`]: bounded top-k selection with deterministic ties (lower row id first).
//! - [`tiered`]: the in-memory corpus of codes and the tier chain.
//! - [`bound`]: pruning by the RaBitQ error bound between tiers, and certified top-k.

pub mod bound;
pub mod build;
pub mod chain;
pub(crate) mod floats;
pub mod layout;
#[cfg(feature = "job")]
pub mod load;
pub mod queries;
pub mod results;
mod select;
mod tier;
pub mod tiered;
pub mod topk;

pub use bound::QueryReport;
pub use build::{CodeLayout, CorpusBuilder, LoadedCorpus};
#[cfg(feature = "job")]
pub use load::load_corpus;
pub use queries::{QueryReader, QuerySet};
pub use tiered::{Codes, Corpus, Hit, Tier, TierSpec};
