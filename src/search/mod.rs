//! Tiered retrieval: a coarse scan over compact codes keeps `k x factor` candidates, finer
//! tiers rescore them, the last tier gives the top-k.
//!
//! - [`topk`]: bounded top-k selection with deterministic ties (lower row id first).
//! - [`tiered`]: the in-memory corpus of codes and the tier chain.

pub mod load;
pub mod tiered;
pub mod topk;

pub use load::{load_corpus, LoadedCorpus};
pub use tiered::{Corpus, Hit, Tier, TierSpec};
