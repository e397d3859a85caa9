//! `recall`: the recall report of quantization configurations against exact search, over
//! Parquet files (streamed on every pass, as `embquant recall`) or vectors in memory.

use std::path::PathBuf;
use std::sync::Arc;

use embquant::job;
use embquant::recall::{run_source, write_outputs, Config, Gate, Queries, RecallOptions, Target};
use embquant::recall::{MemorySource, ParquetSource, VectorSource};
use embquant::search::QueryReader;
use embquant::{CalibrationMethod, Vectors};
use pyo3::prelude::*;

use crate::arrays;
use crate::errors::{parse, value_error, IntoPy};
use crate::runner;

/// The files the report directory receives.
const REPORT_FILES: [&str; 4] = [
    "report.json",
    "report.md",
    "recall.svg",
    "ground_truth.parquet",
];

/// Paths (a string or a list of strings), or None for anything else (vectors).
fn paths(obj: &Bound<'_, PyAny>) -> Option<Vec<String>> {
    if let Ok(s) = obj.extract::<String>() {
        return Some(vec![s]);
    }
    obj.extract::<Vec<String>>().ok()
}

/// Row-major values (null rows zeroed) and row validity of an in-memory vector column.
fn memory_values(obj: &Bound<'_, PyAny>, column: Option<&str>) -> PyResult<MemorySource> {
    let col = arrays::vectors(obj, column)?;
    let v = Vectors::try_new(col.array.as_ref()).py()?;
    let dim = v.dim();
    let mut values = v.values().to_vec();
    let valid: Vec<bool> = (0..v.len()).map(|r| v.is_valid(r)).collect();
    for (r, ok) in valid.iter().enumerate() {
        if !ok {
            values[r * dim..(r + 1) * dim].fill(0.0);
        }
    }
    let valid = valid.iter().any(|v| !v).then_some(valid);
    MemorySource::new(values, dim, valid).py()
}

/// The report as JSON; with `report`, also report.json, report.md, recall.svg and the
/// ground truth (a cache reused by the next run on the same data) in that directory.
#[pyfunction]
#[pyo3(signature = (corpus, queries=None, sample_queries=None, column="embedding", k=vec![1, 10, 100], configs=None, dims=vec![], target_recall=None, min_recall=vec![], calibration_rows=None, method="minmax", seed=42, code_budget_mb=1024, report=None, progress=None, binary_threshold="zero", rabitq_rotation="hadamard"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn recall(
    py: Python<'_>,
    corpus: &Bound<'_, PyAny>,
    queries: Option<&Bound<'_, PyAny>>,
    sample_queries: Option<usize>,
    column: &str,
    k: Vec<usize>,
    configs: Option<&str>,
    dims: Vec<usize>,
    target_recall: Option<&str>,
    min_recall: Vec<String>,
    calibration_rows: Option<usize>,
    method: &str,
    seed: u64,
    code_budget_mb: u64,
    report: Option<PathBuf>,
    progress: Option<&Bound<'_, PyAny>>,
    binary_threshold: &str,
    rabitq_rotation: &str,
) -> PyResult<String> {
    let mut options = RecallOptions::default();
    options.ks = k;
    options.configs = configs
        .map(|s| {
            s.split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(Config::parse)
                .collect::<embquant::Result<Vec<_>>>()
        })
        .transpose()
        .py()?;
    options.dims = dims;
    options.target = target_recall.map(parse::<Target>).transpose()?;
    options.gates = min_recall
        .iter()
        .map(|g| parse::<Gate>(g))
        .collect::<PyResult<_>>()?;
    options.calibration_rows = calibration_rows;
    options.range = parse::<CalibrationMethod>(method)?;
    options.seed = seed;
    options.code_budget =
        usize::try_from(code_budget_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    options.codes = {
        let mut spec = job::QuantizeSpec::new(column);
        spec.binary_threshold = binary_threshold.into();
        spec.rabitq_rotation = rabitq_rotation.into();
        spec.code_params().py()?
    };
    // The corpus: files streamed on every pass, or vectors held in memory.
    let mut inputs = embquant::io::Inputs::new();
    let source: Arc<dyn VectorSource> = match paths(corpus) {
        Some(p) => {
            let files = py.detach(|| job::discover(&p)).py()?;
            for s in &p {
                inputs.add_spelling(s).py()?;
            }
            inputs.add_files(&files);
            Arc::new(py.detach(|| ParquetSource::open(files, column)).py()?)
        }
        None => Arc::new(memory_values(corpus, None)?),
    };
    let dim = source.dim();
    let queries = match (queries, sample_queries) {
        (Some(_), Some(_)) => {
            return Err(value_error("give queries or sample_queries, not both"));
        }
        (Some(q), None) => match paths(q) {
            Some(p) => {
                let qf = py.detach(|| job::discover(&p)).py()?;
                for s in &p {
                    inputs.add_spelling(s).py()?;
                }
                inputs.add_files(&qf);
                let qs = py
                    .detach(|| QueryReader::new(column, None, None, dim).read_files(&qf))
                    .py()?;
                Queries {
                    values: qs.values,
                    exclude: None,
                }
            }
            None => {
                let col = arrays::vectors(q, None)?;
                let mut reader = QueryReader::new(column, None, None, dim);
                reader.push(col.array.as_ref(), None).py()?;
                Queries {
                    values: reader.finish().values,
                    exclude: None,
                }
            }
        },
        (None, Some(n)) => {
            let rows = source.rows();
            let picks: Vec<u32> = job::sample_rows(rows as u64, n.min(rows) as u64, seed)
                .into_iter()
                .map(|r| r as u32)
                .filter(|&r| source.valid().is_none_or(|v| v[r as usize]))
                .collect();
            let values = py.detach(|| source.floats(None).fetch(&picks)).py()?;
            Queries {
                values,
                exclude: Some(picks),
            }
        }
        (None, None) => return Err(value_error("give queries or sample_queries")),
    };
    let dir = match &report {
        Some(d) => {
            let s = d.to_string_lossy();
            let embquant::io::Location::Local(d) = inputs.check_spelling(&s, false).py()? else {
                return Err(value_error(format!(
                    "{s}: recall writes its report to a local directory; for an object store, run `embquant recall --report {s}`"
                )));
            };
            for name in REPORT_FILES {
                let file = embquant::io::Location::Local(d.join(name));
                inputs
                    .check(&file, false, &d.join(name).display().to_string())
                    .py()?;
            }
            Some(d)
        }
        None => None,
    };
    let report = runner::run_blocking(py, progress, move |_| {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)
                .map_err(|e| embquant::Error::io(format!("creating {}", d.display()), e))?;
        }
        let report = run_source(source, &queries, &options, dir.as_deref())?;
        if let Some(d) = &dir {
            write_outputs(&report, d)?;
        }
        Ok(report)
    })?;
    serde_json::to_string(&report).map_err(|e| value_error(e.to_string()))
}
