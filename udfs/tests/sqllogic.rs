//! Runs every `.slt` file under `tests/sqllogic/` (relative to this crate) through a
//! DataFusion session with the embquant functions registered and the test tables:
//!
//! - `corpus`: `tests/data/minilm-wordnet-5k.parquet` (5,000 x 384, `id`, `embedding`, ...)
//! - `queries`: `tests/data/minilm-wordnet-queries-50.parquet`
//!
//! Parquet metadata is kept (`skip_metadata = false`). Besides plain SQL, the runner knows
//! psql's `\gset`: a query ending in `\gset` stores its one row's columns as variables,
//! and `:'name'` later in any statement is replaced by the value as a quoted SQL string
//! (`:name` unquoted). `$__TEST_DIR__` is a fresh temporary directory per file (the
//! runner replaces it; sqllogictest's own `control substitution` would reject `\gset`). Run one file with `cargo test -p embquant-udfs --test
//! sqllogic -- NAME`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Db {
    ctx: SessionContext,
    vars: HashMap<String, String>,
    /// What `$__TEST_DIR__` stands for: a fresh temporary directory per file, removed at
    /// the end (never a folder in the source tree).
    dir: tempfile::TempDir,
}

fn column_type(dt: &DataType) -> DefaultColumnType {
    if dt.is_integer() {
        DefaultColumnType::Integer
    } else if dt.is_floating() {
        DefaultColumnType::FloatingPoint
    } else if matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        DefaultColumnType::Text
    } else {
        DefaultColumnType::Any
    }
}

fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, DataFusionError> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            let cells: Vec<String> = fmts
                .iter()
                .map(|f| {
                    let s = f.value(r).to_string();
                    if s.is_empty() {
                        "(empty)".to_string()
                    } else {
                        s
                    }
                })
                .collect();
            // A multi-line value (an EXPLAIN plan) continues on rows of its own, one per
            // line, so the expected text reads like the plan.
            let mut first = Vec::with_capacity(cells.len());
            let mut more = Vec::new();
            for c in cells {
                let mut lines = c.lines();
                first.push(lines.next().unwrap_or("").to_string());
                more.extend(lines.map(|l| vec![l.trim().to_string()]));
            }
            out.push(first);
            out.extend(more);
        }
    }
    Ok(out)
}

impl Db {
    fn substitute(&self, sql: &str) -> String {
        let mut s = sql.replace("$__TEST_DIR__", &self.dir.path().to_string_lossy());
        for (k, v) in &self.vars {
            s = s.replace(&format!(":'{k}'"), &format!("'{}'", v.replace('\'', "''")));
            s = s.replace(&format!(":{k}"), v);
        }
        s
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let sql = self.substitute(sql);
        let (sql, gset) = match sql.trim_end().strip_suffix("\\gset") {
            Some(q) => (q.to_string(), true),
            None => (sql, false),
        };
        let df = self.ctx.sql(&sql).await?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await?;
        if gset {
            let r = rows(&batches)?;
            let Some(first) = r.first() else {
                return Err(DataFusionError::Execution(
                    "\\gset: the query returned no rows".into(),
                ));
            };
            for (f, v) in schema.fields().iter().zip(first) {
                self.vars.insert(f.name().clone(), v.clone());
            }
            return Ok(DBOutput::StatementComplete(0));
        }
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: schema
                .fields()
                .iter()
                .map(|f| column_type(f.data_type()))
                .collect(),
            rows: rows(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion-embquant"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

async fn make_db() -> Result<Db, DataFusionError> {
    let ctx = SessionContext::new_with_config(embquant_udfs::session_config());
    embquant_udfs::register_all(&ctx);
    let d = data_dir();
    for (name, file) in [
        ("corpus", "minilm-wordnet-5k.parquet"),
        ("queries", "minilm-wordnet-queries-50.parquet"),
    ] {
        let path = d.join(file);
        ctx.register_parquet(
            name,
            path.to_str().expect("utf-8 path"),
            ParquetReadOptions::default(),
        )
        .await?;
    }
    Ok(Db {
        ctx,
        vars: HashMap::new(),
        dir: tempfile::tempdir()?,
    })
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sqllogic");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/sqllogic exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            filter.is_empty()
                || filter
                    .iter()
                    .any(|f| p.to_string_lossy().contains(f.as_str()))
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty() || !filter.is_empty(),
        "no .slt files in {}",
        dir.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut failed = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let result = rt.block_on(async {
            let mut runner = sqllogictest::Runner::new(|| async { make_db().await });
            runner.run_file_async(f).await
        });
        match result {
            Ok(()) => println!("sqllogictest {name} ... ok"),
            Err(e) => {
                println!("sqllogictest {name} ... FAILED\n{e}");
                failed.push(name);
            }
        }
    }
    println!(
        "\nsqllogictest: {} files, {} passed, {} failed",
        files.len(),
        files.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        eprintln!("failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}
