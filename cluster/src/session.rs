//! The session every process of an embquant cluster builds: the client, the scheduler
//! (which plans) and each executor (which decodes and runs the plan fragments) must agree
//! on the functions, the object stores and the Parquet options, or a plan that names an
//! embquant function cannot be decoded where it runs.

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::common::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::{SessionConfig, SessionContext};

/// Every scalar function a cluster process knows: DataFusion's and Ballista's built-ins,
/// embquant's SQL functions and the shard job ([`crate::shard`]).
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let mut f = ballista_core::extension::ballista_scalar_functions();
    f.extend(embquant_udfs::functions());
    f.push(Arc::new(ScalarUDF::from(
        crate::shard::QuantizeShardFunc::new(),
    )));
    f
}

/// Every aggregate function a cluster process knows (built-ins and
/// `embedding_calibration`).
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    let mut f = ballista_core::extension::ballista_aggregate_functions();
    f.extend(embquant_udfs::aggregate_functions());
    f
}

/// Ballista's session configuration with Parquet field metadata kept (embquant's recipe
/// and calibration live there).
pub fn config() -> SessionConfig {
    let mut c = SessionConfig::new_with_ballista();
    c.options_mut().execution.parquet.skip_metadata = false;
    c
}

/// Keeps Parquet metadata in a configuration that came from elsewhere (a client's session
/// as the scheduler receives it).
pub fn with_metadata_kept(mut c: SessionConfig) -> SessionConfig {
    c.options_mut().execution.parquet.skip_metadata = false;
    c
}

/// A runtime that reaches every object store embquant knows (credentials from the
/// environment).
pub fn runtime() -> Result<Arc<RuntimeEnv>> {
    embquant_udfs::stores::runtime()
}

/// The session state of a scheduler (and of the in-process helpers): built-ins, embquant's
/// functions, object stores, `config` with metadata kept.
pub fn state(config: SessionConfig) -> Result<SessionState> {
    Ok(SessionStateBuilder::new()
        .with_default_features()
        .with_config(with_metadata_kept(config))
        .with_runtime_env(runtime()?)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_scalar_functions(scalar_functions())
        .with_aggregate_functions(aggregate_functions())
        .with_window_functions(ballista_core::extension::ballista_window_functions())
        .build())
}

/// The functions an executor resolves plan fragments against.
pub fn function_registry() -> Result<BallistaFunctionRegistry> {
    Ok((&state(config())?).into())
}

/// A client session on the cluster whose scheduler is at `url` (`df://HOST:PORT`), with
/// every embquant function registered (after connecting: Ballista's upgrade replaces the
/// function list). `tiered_search` is not offered: a table function's provider would have
/// to cross to the scheduler, which Ballista cannot serialize (run it without `--cluster`).
pub async fn connect(url: &str) -> Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config())
        .with_runtime_env(runtime()?)
        .build();
    let ctx = SessionContext::remote_with_state(url, state).await?;
    for f in scalar_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    tracing::debug!(url, "connected to the embquant cluster");
    Ok(ctx)
}

/// A hint for an error a cluster job reported, when the cause is a process that does not
/// know a function the plan names (a stock Ballista executor, or an older embquant one).
pub fn hint(error: &str) -> Option<String> {
    let (_, rest) = error.split_once("PhysicalExtensionCodec is not provided for ")?;
    let name = rest
        .split_once("function ")
        .map(|(_, n)| n)
        .unwrap_or(rest)
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    Some(format!(
        "an executor does not know the function {name}: run every executor as `embquant cluster executor` \
         (embquant-cluster {}), not a stock Ballista executor",
        env!("CARGO_PKG_VERSION")
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_function_is_named_in_the_hint() {
        let e = "Job 1 failed: Task failed due to runtime execution error: DataFusionError(NotImplemented(\"PhysicalExtensionCodec is not provided for scalar function binary_quantize\"))";
        let h = super::hint(e).unwrap();
        assert!(
            h.contains("does not know the function binary_quantize:"),
            "{h}"
        );
        assert_eq!(super::hint("some other error"), None);
    }
}
