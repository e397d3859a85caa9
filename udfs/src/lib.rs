//! # embquant-udfs
//!
//! DataFusion SQL functions over [`embquant`]: quantization with calibration, distances on
//! floats and codes, a calibration aggregate and a tiered KNN table function. Register
//! them all with [`register_all`]:
//!
//! ```no_run
//! # async fn f() -> datafusion::common::Result<()> {
//! use datafusion::prelude::*;
//!
//! let ctx = SessionContext::new_with_config(embquant_udfs::session_config());
//! embquant_udfs::register_all(&ctx);
//! ctx.register_parquet("corpus", "corpus.parquet", ParquetReadOptions::default()).await?;
//! ctx.sql("SELECT id FROM corpus ORDER BY hamming_distance(embedding_bin, \
//!          binary_quantize([0.1, 0.2, 0.3])) LIMIT 10").await?.show().await?;
//! # Ok(()) }
//! ```
//!
//! | function | |
//! |---|---|
//! | `binary_quantize(v [, calibration])` | bits, `FixedSizeBinary(ceil(D/8))` |
//! | `int8_quantize(v [, calibration])`, `int8_dequantize(codes [, calibration])` | int8 codes |
//! | `int4_quantize(v [, calibration])`, `int4_dequantize(codes [, calibration])` | packed int4 |
//! | `subvector(v, start, len)`, `l2_normalize(v)` | Matryoshka prefixes, unit length |
//! | `hamming_distance(a, b)` | bits |
//! | `inner_product(a, b)` (`dot_product`), `cosine_distance(a, b)` | floats, exactly as the DataFusion built-ins they replace (see [`builtin_pair`]) |
//! | `l2_distance(a, b)` | floats |
//! | `int8_inner_product(query, codes [, calibration])` | asymmetric float x int8 |
//! | `rabitq_quantize(v [, calibration])`, `rabitq_inner_product(query, codes [, calibration])` | RaBitQ codes and their estimator |
//! | `recall_at_k(approx_ids, exact_ids)` | share of the exact ids found |
//! | `embedding_calibration(v [, method])` | aggregate: calibration JSON |
//! | `tiered_search('corpus', 'queries', k [, 'binary:8,int8:2,float'])` | table function |
//!
//! A missing calibration argument is read from the `embquant.calibration` field metadata
//! that `embquant quantize` (and the quantize functions here) attach to code columns: keep
//! Parquet metadata (`datafusion.execution.parquet.skip_metadata = false`, as
//! [`session_config`] sets).
#![warn(missing_docs)]

use std::sync::Arc;

use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionConfig;

pub use register::register_parquet;

// The DataFusion this crate is built on, for callers that need the same version.
pub use datafusion;

pub mod args;
pub mod binary_quantize;
pub mod builtin_pair;
pub mod cosine_distance;
pub mod embedding_calibration;
pub mod hamming_distance;
pub mod inner_product;
pub mod int4_dequantize;
pub mod int4_quantize;
pub mod int8_dequantize;
pub mod int8_inner_product;
pub mod int8_quantize;
pub mod l2_distance;
pub mod l2_normalize;
pub mod pairwise;
pub mod rabitq_inner_product;
pub mod rabitq_quantize;
pub mod recall_at_k;
pub mod register;
#[cfg(feature = "cloud")]
pub mod stores;
pub mod subvector;
pub mod tiered_search;
pub mod write_guard;

/// Every scalar function of this crate.
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(binary_quantize::BinaryQuantizeFunc::new())),
        Arc::new(ScalarUDF::from(int8_quantize::Int8QuantizeFunc::new())),
        Arc::new(ScalarUDF::from(int8_dequantize::Int8DequantizeFunc::new())),
        Arc::new(ScalarUDF::from(int4_quantize::Int4QuantizeFunc::new())),
        Arc::new(ScalarUDF::from(int4_dequantize::Int4DequantizeFunc::new())),
        Arc::new(ScalarUDF::from(subvector::SubvectorFunc::new())),
        Arc::new(ScalarUDF::from(l2_normalize::L2NormalizeFunc::new())),
        Arc::new(ScalarUDF::from(hamming_distance::HammingDistanceFunc::new())),
        Arc::new(ScalarUDF::from(inner_product::InnerProductFunc::new())),
        Arc::new(ScalarUDF::from(cosine_distance::CosineDistanceFunc::new())),
        Arc::new(ScalarUDF::from(l2_distance::L2DistanceFunc::new())),
        Arc::new(ScalarUDF::from(
            int8_inner_product::Int8InnerProductFunc::new(),
        )),
        Arc::new(ScalarUDF::from(rabitq_quantize::RabitqQuantizeFunc::new())),
        Arc::new(ScalarUDF::from(
            rabitq_inner_product::RabitqInnerProductFunc::new(),
        )),
        Arc::new(ScalarUDF::from(recall_at_k::RecallAtKFunc::new())),
    ]
}

/// Every aggregate function of this crate.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![Arc::new(AggregateUDF::from(
        embedding_calibration::EmbeddingCalibrationFunc::new(),
    ))]
}

/// A session configuration that keeps Parquet field metadata (where embquant stores each
/// code column's recipe and calibration).
pub fn session_config() -> SessionConfig {
    let mut c = SessionConfig::new();
    c.options_mut().execution.parquet.skip_metadata = false;
    c
}

/// Registers every function (scalar, aggregate and table) with `ctx`.
pub fn register_all(ctx: &SessionContext) {
    for f in functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    ctx.register_udtf("tiered_search", Arc::new(tiered_search::TieredSearchFunc));
    tracing::debug!("registered the embquant SQL functions");
}

/// The SQL options of the read-only mode, for a service that runs SQL it did not write
/// (users' queries, the Python binding): `COPY`, `INSERT`, `CREATE EXTERNAL TABLE` and every
/// other DDL, DML and `SET`-style statement are refused at planning, so a query reads only
/// the tables the host registered and writes nothing. File paths as table names
/// (`SELECT * FROM 'x.parquet'`) stay refused as long as the session does not enable URL
/// tables (DataFusion's default; [`session_config`] keeps it).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use datafusion::prelude::*;
///
/// let ctx = SessionContext::new_with_config(embquant_udfs::session_config());
/// embquant_udfs::register_all(&ctx);
/// let ro = embquant_udfs::read_only_sql_options();
/// assert!(ctx.sql_with_options("SELECT hamming_distance(X'0F', X'01')", ro).await.is_ok());
/// let refused = ctx
///     .sql_with_options("COPY (SELECT 1 AS x) TO '/tmp/anywhere.parquet'", ro)
///     .await
///     .unwrap_err();
/// assert!(refused.to_string().contains("COPY"), "{refused}");
/// # }
/// ```
pub fn read_only_sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}
