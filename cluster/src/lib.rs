//! embquant on Apache DataFusion Ballista: a scheduler and executors that know every
//! embquant SQL function, and the distributed calibrate -> quantize job.
//!
//! Stock Ballista binaries cannot run a plan that names an embquant function: the executor
//! decodes each plan fragment against its own function registry. Every process here builds
//! the same session ([`session`]): DataFusion's and Ballista's built-ins, embquant's scalar
//! functions, the `embedding_calibration` aggregate and the shard job
//! ([`shard::QuantizeShardFunc`]), an object-store registry that reaches `s3://`, `gs://`
//! and `az://` with the environment's credentials, and `skip_metadata = false` so the
//! calibration in Parquet field metadata is read.
//!
//! The distributed job ([`pipeline`]):
//! 1. **calibrate**: `SELECT embedding_calibration(v, method)` over every input file; the
//!    aggregate runs partial on the executors and final after the shuffle, and gives the
//!    calibration (same fingerprint) a local run gives;
//! 2. **quantize**: one task per input file in one Ballista job, each running embquant's
//!    streaming job with the calibration inlined as a literal, so each part is exactly what
//!    `embquant quantize` writes for that file (codes, field metadata, footer);
//! 3. **commit**: the parts and their manifest appear at the target only when every shard
//!    succeeded.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use embquant::job::QuantizeSpec;
//! use embquant_ballista::{pipeline, server::LocalCluster, session};
//!
//! let cluster = LocalCluster::start(2, 1).await?;
//! let ctx = session::connect(&cluster.url()).await?;
//! let files = embquant::io::discover(&["warehouse/".to_string()])?;
//! let cal = pipeline::calibrate(&ctx, &files, "embedding", "minmax").await?;
//! let summary = pipeline::quantize(&ctx, &files, "quantized/", &QuantizeSpec::new("embedding"), &cal).await?;
//! println!("{} rows on {:?}", summary.rows(), summary.workers());
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod pipeline;
pub mod server;
pub mod session;
pub mod shard;

pub use datafusion;
