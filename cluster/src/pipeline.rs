//! The distributed job: calibrate with the `embedding_calibration` aggregate (partial states
//! on the executors, merged after the shuffle), then quantize every input file as one task
//! of one Ballista job ([`crate::shard`]), then commit the parts as a directory output.
//!
//! The output is a directory of `part-NNNNN.parquet` files, one per input file in input
//! order, and the `_embquant_manifest.json` that lists them: the layout `embquant quantize
//! --target-file-rows` writes, which `inspect`, `search`, `recall` and `sql` read as one
//! table. Nothing appears at the target unless every shard succeeded:
//! - a local target is built in a staging directory beside it (the executors write into it,
//!   so a local output needs a file system every executor shares) and swapped in whole;
//! - at a URL (the prefix must hold nothing yet), each task uploads its part when it is
//!   complete and the client writes the manifest last; a failed job deletes the parts.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use embquant::io::DirManifest;
use embquant::job::InputFile;
use embquant::Calibration;

use crate::shard::{ShardSummary, NAME};
use embquant::job::QuantizeSpec;

/// The location of an input file as every process of the cluster can name it: its URL, or
/// its absolute local path.
pub fn location(f: &InputFile) -> String {
    let s = f.path.to_string_lossy().into_owned();
    if embquant::io::is_url(&s) {
        return s;
    }
    std::path::absolute(&f.path)
        .unwrap_or_else(|_| f.path.clone())
        .to_string_lossy()
        .into_owned()
}

/// Registers the Parquet files `files` as table `name` in the cluster session.
pub async fn register_files(ctx: &SessionContext, name: &str, files: &[InputFile]) -> Result<()> {
    let schema = files[0]
        .schema()
        .with_context(|| format!("reading the schema of {}", location(&files[0])))?;
    let urls: Vec<String> = files.iter().map(location).collect();
    register_urls(ctx, name, &urls, schema)
}

/// Registers the Parquet files at `urls` (paths or URLs) with `schema` as table `name`,
/// with the session's Parquet options (field metadata kept).
fn register_urls(
    ctx: &SessionContext,
    name: &str,
    urls: &[String],
    schema: SchemaRef,
) -> Result<()> {
    let urls = urls
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::common::Result<Vec<_>>>()?;
    let options = ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// A SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Calibrates `column` of `files` on the cluster with `method` (`minmax`, `quantile:P`,
/// `meanstd:K`): every executor aggregates its files' rows into a partial state; the final
/// merge gives the calibration a local `embedding_calibration` gives.
pub async fn calibrate(
    ctx: &SessionContext,
    files: &[InputFile],
    column: &str,
    method: &str,
) -> Result<Calibration> {
    calibrate_vectors(ctx, files, &ident(column), method).await
}

/// The calibration a [`QuantizeSpec`] asks for, computed on the cluster: its column, range
/// method and Matryoshka prefix (`l2_normalize(subvector(v, 1, D))`, the arithmetic of the
/// local job's truncation). A sample (`sample_rows`) is the local command's: refused here.
pub async fn calibrate_spec(
    ctx: &SessionContext,
    files: &[InputFile],
    spec: &QuantizeSpec,
) -> Result<Calibration> {
    if spec.sample_rows.is_some() {
        bail!(
            "sample_rows: the cluster calibrates on every row; calibrate a sample locally (embquant calibrate --sample-rows) and pass it with --calibration"
        );
    }
    let column = ident(&spec.column);
    let vectors = match spec.dims {
        Some(d) => format!("l2_normalize(subvector({column}, 1, {d}))"),
        None => column,
    };
    let cal = calibrate_vectors(ctx, files, &vectors, &spec.method).await?;
    // The medians only when the local job keeps them (a median threshold, a quantile range),
    // so the calibration, its fingerprint and the files are the local command's.
    let quantile = matches!(cal.method(), embquant::RangeMethod::Quantile { .. });
    Ok(if spec.calibrate_options()?.sketch || quantile {
        cal
    } else {
        cal.without_medians()
    })
}

async fn calibrate_vectors(
    ctx: &SessionContext,
    files: &[InputFile],
    vectors: &str,
    method: &str,
) -> Result<Calibration> {
    if files.is_empty() {
        bail!("no input files");
    }
    register_files(ctx, "embquant_calibration_input", files).await?;
    let sql = format!(
        "SELECT embedding_calibration({vectors}, {}) FROM embquant_calibration_input",
        literal(method)
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    ctx.deregister_table("embquant_calibration_input")?;
    let json = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            let c = b.column(0).as_any().downcast_ref::<StringArray>()?;
            c.is_valid(0).then(|| c.value(0).to_string())
        })
        .context("the calibration aggregate returned no value (no rows?)")?;
    Ok(Calibration::from_json(&json)?)
}

/// What the distributed quantize job did.
#[derive(Debug, Clone)]
pub struct ClusterSummary {
    /// One entry per shard, in input order.
    pub shards: Vec<ShardSummary>,
    /// Wall time.
    pub seconds: f64,
}

impl ClusterSummary {
    /// Rows over all shards.
    pub fn rows(&self) -> u64 {
        self.shards.iter().map(|s| s.rows).sum()
    }

    /// The distinct processes that ran shards.
    pub fn workers(&self) -> Vec<String> {
        let mut w: Vec<String> = self.shards.iter().map(|s| s.worker.clone()).collect();
        w.sort();
        w.dedup();
        w
    }
}

/// The name of shard `i`'s part.
pub fn part_name(i: usize) -> String {
    format!("part-{i:05}.parquet")
}

/// Quantizes every file of `files` into the directory `output` (local or a URL) on the
/// cluster, one task per file, with `calibration` inlined in the plan.
pub async fn quantize(
    ctx: &SessionContext,
    files: &[InputFile],
    output: &str,
    spec: &QuantizeSpec,
    calibration: &Calibration,
) -> Result<ClusterSummary> {
    let t = Instant::now();
    if files.is_empty() {
        bail!("no input files");
    }
    spec.job_options()?;
    let inputs: Vec<String> = files.iter().map(location).collect();
    let mut read = embquant::io::Inputs::new();
    read.add_files(files);
    let target = read.check_spelling(output, true)?;
    if let embquant::io::Location::Object(o) = &target {
        let target = o.url();
        let target = target.as_str();
        let store = embquant::io::object::store_for(target)?;
        let taken = store.objects_below(target)?;
        if let Some(first) = taken.first() {
            bail!(
                "{target} already holds objects ({first} and {} more): a directory output goes to an empty prefix",
                taken.len() - 1
            );
        }
        let parts: Vec<String> = (0..files.len())
            .map(|i| format!("{target}/{}", part_name(i)))
            .collect();
        let list = format!("{target}/{SHARD_LIST_DIR}");
        let r = run_shards(ctx, &inputs, &parts, spec, calibration, &list).await;
        for o in store.objects_below(&list).unwrap_or_default() {
            if let Err(e) = store.delete(&o) {
                tracing::warn!("removing the shard list entry {o}: {e}");
            }
        }
        let done = r.and_then(|shards| {
            let rows = shards.iter().map(|s| s.rows).sum();
            let names = (0..files.len()).map(part_name).collect();
            let manifest = serde_json::to_string_pretty(&DirManifest::new(names, rows))?;
            let staging = tempfile::tempdir()?;
            let local = staging.path().join(embquant::io::MANIFEST_NAME);
            std::fs::write(&local, manifest)?;
            store.upload(&local, &format!("{target}/{}", embquant::io::MANIFEST_NAME))?;
            Ok(shards)
        });
        return match done {
            Ok(shards) => Ok(ClusterSummary {
                shards,
                seconds: t.elapsed().as_secs_f64(),
            }),
            Err(e) => {
                // Every object below the prefix is this job's: it was empty.
                for o in store.objects_below(target).unwrap_or_default() {
                    if let Err(de) = store.delete(&o) {
                        tracing::warn!("removing {o} after the failed job: {de}");
                    }
                }
                Err(e)
            }
        };
    }
    let target = target.local().expect("not an object URL").to_path_buf();
    let target = std::path::absolute(&target).unwrap_or(target);
    let dir = embquant::io::AtomicDir::create(&target, false)?;
    let parts: Vec<String> = (0..files.len())
        .map(|i| dir.path().join(part_name(i)).to_string_lossy().into_owned())
        .collect();
    let list = dir.path().join(SHARD_LIST_DIR);
    let shards = run_shards(
        ctx,
        &inputs,
        &parts,
        spec,
        calibration,
        &list.to_string_lossy(),
    )
    .await?;
    // The shard list, and the temporary file a task attempt on an executor that died may
    // have left: only the parts go into the output.
    let names: Vec<String> = (0..files.len()).map(part_name).collect();
    for e in std::fs::read_dir(dir.path())? {
        let e = e?;
        if !names.iter().any(|n| e.file_name() == n.as_str()) {
            let p = e.path();
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let rows = shards.iter().map(|s| s.rows).sum();
    let shards = shards
        .into_iter()
        .zip(&names)
        .map(|(mut s, n)| {
            s.output = target.join(n).to_string_lossy().into_owned();
            s
        })
        .collect();
    dir.commit(names, rows)?;
    Ok(ClusterSummary {
        shards,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// The directory (or prefix) beside the parts where the shard list goes while the job runs.
const SHARD_LIST_DIR: &str = "_embquant_shards";

/// Runs the shard function for every (input, part) pair as one Ballista job and returns
/// the summaries in input order.
///
/// The pairs are a table of one tiny Parquet file per shard, written to `list` (a local
/// directory or URL prefix every executor reads): the scan has one file group per shard,
/// so with `target_partitions` set to the shard count each task takes one shard, and the
/// calibration appears once in the plan however many shards there are. (A `UNION ALL` of
/// one `SELECT` per shard would carry it once per shard in every task, and Ballista 55's
/// scheduler loses the status of such union tasks: the job never ends.)
async fn run_shards(
    ctx: &SessionContext,
    inputs: &[String],
    parts: &[String],
    spec: &QuantizeSpec,
    calibration: &Calibration,
    list: &str,
) -> Result<Vec<ShardSummary>> {
    let urls = write_shard_list(inputs, parts, list)?;
    let table = format!("embquant_shards_{}", std::process::id());
    register_urls(ctx, &table, &urls, shard_list_schema())?;
    ctx.sql(&format!(
        "SET datafusion.execution.target_partitions = {}",
        inputs.len().max(1)
    ))
    .await?
    .collect()
    .await?;
    let sql = format!(
        "SELECT {NAME}(input, output, {}, {}) AS shard FROM {table}",
        literal(&serde_json::to_string(spec)?),
        literal(&calibration.to_json()?)
    );
    let batches = ctx.sql(&sql).await?.collect().await;
    ctx.deregister_table(&table)?;
    let mut all = Vec::new();
    for b in &batches? {
        let c = b
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .context("the shard function returned no text")?;
        for r in 0..c.len() {
            all.push(serde_json::from_str::<ShardSummary>(c.value(r))?);
        }
    }
    if all.len() != inputs.len() {
        bail!(
            "the cluster reported {} of {} shards",
            all.len(),
            inputs.len()
        );
    }
    // Tasks finish in any order.
    all.sort_by_key(|s| inputs.iter().position(|i| *i == s.input));
    Ok(all)
}

fn shard_list_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("output", DataType::Utf8, false),
    ]))
}

/// Writes one Parquet file of one (input, output) row per shard under `list`; their URLs.
fn write_shard_list(inputs: &[String], parts: &[String], list: &str) -> Result<Vec<String>> {
    let location = embquant::io::Location::parse(list)?;
    let url = location.local().is_none();
    let staging = tempfile::tempdir()?;
    let local_dir = match location.local() {
        Some(p) => p.to_path_buf(),
        None => staging.path().to_path_buf(),
    };
    std::fs::create_dir_all(&local_dir)
        .with_context(|| format!("creating {}", local_dir.display()))?;
    let store = if url {
        Some(embquant::io::object::store_for(list)?)
    } else {
        None
    };
    let mut urls = Vec::with_capacity(inputs.len());
    for (i, (input, part)) in inputs.iter().zip(parts).enumerate() {
        let name = format!("shard-{i:05}.parquet");
        let path = local_dir.join(&name);
        let batch = RecordBatch::try_new(
            shard_list_schema(),
            vec![
                Arc::new(StringArray::from(vec![input.as_str()])),
                Arc::new(StringArray::from(vec![part.as_str()])),
            ],
        )?;
        let mut w = ArrowWriter::try_new(std::fs::File::create(&path)?, batch.schema(), None)?;
        w.write(&batch)?;
        w.close()?;
        match &store {
            Some(store) => {
                let u = format!("{}/{name}", list.trim_end_matches('/'));
                store.upload(&path, &u)?;
                urls.push(u);
            }
            None => urls.push(path.to_string_lossy().into_owned()),
        }
    }
    Ok(urls)
}
