//! `embquant_quantize_shard(input, output, spec, calibration)`: embquant's streaming
//! quantize job on one input file, run by whichever executor Ballista gives the task.
//!
//! The distributed job ([`crate::pipeline`]) calls it on a table of (input, part) rows, one
//! file per shard, so each shard is one task of one Ballista job and the shards spread over
//! every executor's task slots. Each task runs the same code as
//! `embquant quantize` (reading, encoding, the footer and field metadata, the atomic write),
//! so a shard's output is byte for byte what the local command writes for that file with the
//! same calibration. The function is volatile: DataFusion never evaluates it while planning
//! (its arguments are literals) nor drops a call.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_datafusion_err, exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use embquant::job::{self, NoProgress, QuantizeSpec};
use embquant::metadata::ColumnSummary;
use embquant::Calibration;
use serde::{Deserialize, Serialize};

/// The function's name.
pub const NAME: &str = "embquant_quantize_shard";

/// What one shard's task did (the function's result, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// The input file.
    pub input: String,
    /// The part written.
    pub output: String,
    /// Rows written.
    pub rows: u64,
    /// Bytes of the input file.
    pub bytes_in: u64,
    /// Bytes of the part.
    pub bytes_out: u64,
    /// Code columns with their clip counts.
    pub columns: Vec<ColumnSummary>,
    /// Wall time of the task.
    pub seconds: f64,
    /// The process that ran it (`host:pid`).
    pub worker: String,
}

/// Quantizes the one file `input` into `output` (a local path, or a URL: written to a local
/// temporary file, then uploaded as one object) with `calibration`.
pub async fn quantize_shard(
    input: &str,
    output: &str,
    spec: &QuantizeSpec,
    calibration: Calibration,
) -> embquant::Result<ShardSummary> {
    let opts = spec.job_options()?;
    let files = job::discover(&[input.to_string()])?;
    if files.len() != 1 {
        return Err(embquant::Error::bad_argument(
            "shard",
            format!(
                "shard {input}: expected one Parquet file, found {}",
                files.len()
            ),
        ));
    }
    let target = embquant::io::Location::parse(output)?;
    let summary = if let embquant::io::Location::Object(o) = &target {
        let output = o.url();
        let staging = tempfile::tempdir()
            .map_err(|e| embquant::Error::io("creating a staging directory", e))?;
        let local = staging.path().join("part.parquet");
        let s = job::quantize(&files, &local, calibration, &opts, &NoProgress).await?;
        let store = embquant::io::object::store_for(&output)?;
        let local = local.clone();
        tokio::task::spawn_blocking(move || store.upload(&local, &output))
            .await
            .map_err(|e| embquant::Error::Internal(format!("the upload thread: {e}")))??;
        s
    } else {
        let path = target.local().expect("not an object URL");
        job::quantize(&files, path, calibration, &opts, &NoProgress).await?
    };
    Ok(ShardSummary {
        input: input.to_string(),
        output: output.to_string(),
        rows: summary.rows,
        bytes_in: summary.bytes_in,
        bytes_out: summary.bytes_out,
        columns: summary.columns,
        seconds: summary.seconds,
        worker: worker(),
    })
}

/// `host:pid` of this process.
pub fn worker() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// Runs [`quantize_shard`] to completion on a thread of its own with its own runtime: the
/// function is called synchronously from inside an executor's task, and the job needs a
/// runtime for its reader and writer.
fn run_blocking(input: &str, output: &str, spec: &str, calibration: &str) -> Result<ShardSummary> {
    let spec: QuantizeSpec = serde_json::from_str(spec)
        .map_err(|e| exec_datafusion_err!("{NAME}: the spec argument: {e}"))?;
    // Errors of the core stay typed (`DataFusionError::External` holding the
    // `embquant::Error`), named by the function and its shard.
    let cal = Calibration::from_json(calibration)
        .map_err(|e| embquant_udfs::args::ext(&format!("{NAME} (the calibration argument)"), e))?;
    // The task's thread waits for the shard job: hand its other async work to the runtime
    // meanwhile (heartbeats, shuffle reads and, in-process, the scheduler share it).
    let wait = || {
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|e| exec_datafusion_err!("{NAME}: starting a runtime: {e}"))?;
                rt.block_on(quantize_shard(input, output, &spec, cal))
                    .map_err(|e| {
                        embquant_udfs::args::ext(&format!("{NAME}({input} -> {output})"), e)
                    })
            })
            .join()
            .map_err(|_| exec_datafusion_err!("{NAME}({input}): the shard job panicked"))?
        })
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// The `embquant_quantize_shard` SQL function (volatile: it writes a file).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QuantizeShardFunc {
    signature: Signature,
}

impl Default for QuantizeShardFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantizeShardFunc {
    /// The function.
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8; 4], Volatility::Volatile),
        }
    }
}

fn text(args: &[ColumnarValue], i: usize, row: usize) -> Result<Option<String>> {
    Ok(match &args[i] {
        ColumnarValue::Scalar(ScalarValue::Utf8(v)) => v.clone(),
        ColumnarValue::Array(a) => {
            let a = a
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| exec_datafusion_err!("{NAME}: argument {} is not text", i + 1))?;
            a.is_valid(row).then(|| a.value(row).to_string())
        }
        other => return exec_err!("{NAME}: argument {} is {}", i + 1, other.data_type()),
    })
}

impl ScalarUDFImpl for QuantizeShardFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let a: Vec<Option<String>> = (0..4)
                .map(|i| text(&args.args, i, row))
                .collect::<Result<_>>()?;
            let [Some(input), Some(output), Some(spec), Some(cal)] = &a[..] else {
                return exec_err!("{NAME}: an argument is NULL (row {row})");
            };
            let s = run_blocking(input, output, spec, cal)?;
            out.push(Some(
                serde_json::to_string(&s).map_err(|e| exec_datafusion_err!("{e}"))?,
            ));
        }
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                out.pop().flatten(),
            )));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}
