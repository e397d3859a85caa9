//! `embquant sql`: one SQL statement (or a prompt) over Parquet, CSV and JSON files, with
//! every embquant function registered (`embquant_udfs::register_all`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::output::Output;
use clap::Args;
use embquant_udfs::datafusion::arrow::util::pretty::pretty_format_batches;
use embquant_udfs::datafusion::dataframe::DataFrameWriteOptions;
use embquant_udfs::datafusion::prelude::{CsvReadOptions, JsonReadOptions, SessionContext};

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL statement; without it, an interactive prompt opens (history in
    /// ~/.embquant_sql_history).
    query: Option<String>,
    /// Register a table: NAME=PATH (a Parquet, CSV or JSON file, or a directory of Parquet
    /// files). Repeatable. Parquet field metadata (embquant's calibration) is kept.
    #[arg(long = "table", short = 't', value_name = "NAME=PATH")]
    tables: Vec<String>,
    /// Write the result to a file instead of printing it (.parquet, .csv or .json).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Refuse COPY, INSERT, CREATE EXTERNAL TABLE and SET: queries read only the --table
    /// tables and write nothing but --output (the mode for SQL from untrusted callers).
    #[arg(long)]
    read_only: bool,
}

/// The `--table` tables: no statement and no `--output` may write over, into or inside them.
type Inputs = embquant_udfs::write_guard::Protected;

async fn register(ctx: &SessionContext, spec: &str) -> Result<()> {
    let Some((name, path)) = spec.split_once('=') else {
        bail!("--table {spec:?}: expected NAME=PATH");
    };
    let (name, path) = (name.trim(), path.trim());
    // A bucket's store comes from the session's registry (`embquant_udfs::stores`) when the table
    // is first read.
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let r = match ext.as_str() {
        "csv" => ctx.register_csv(name, path, CsvReadOptions::new()).await,
        "json" | "ndjson" | "jsonl" => {
            let opts = JsonReadOptions {
                file_extension: if ext == "json" { ".json" } else { ".ndjson" },
                ..Default::default()
            };
            ctx.register_json(name, path, opts).await
        }
        _ => embquant_udfs::register_parquet(ctx, name, path).await,
    };
    r.with_context(|| format!("registering table {name} from {path}"))
}

async fn execute(
    ctx: &SessionContext,
    sql: &str,
    output: Option<&Path>,
    inputs: &Inputs,
    read_only: bool,
) -> Result<()> {
    let t = Instant::now();
    let df = if read_only {
        ctx.sql_with_options(sql, embquant_udfs::read_only_sql_options())
            .await?
    } else {
        ctx.sql(sql).await?
    };
    embquant_udfs::write_guard::check_writes(ctx, df.logical_plan(), inputs).await?;
    match output {
        Some(path) => {
            // At a URL: written to a local staging file, uploaded when complete.
            let target = Output::new(path, &inputs.read, false)?;
            // DataFusion writes to a temporary name beside the target; renamed when complete.
            let (out, file) = embquant::io::AtomicFile::create(target.path())?;
            drop(file);
            let temp = out.path().to_path_buf();
            let p = temp.to_str().context("the output path is not UTF-8")?;
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            let opts = DataFrameWriteOptions::new().with_single_file_output(true);
            let batches = match ext.as_str() {
                "parquet" => df.write_parquet(p, opts, None).await?,
                "csv" => df.write_csv(p, opts, None).await?,
                "json" | "ndjson" => df.write_json(p, opts, None).await?,
                other => bail!(
                    "--output {}: unsupported extension {other:?} (use .parquet, .csv or .json)",
                    path.display()
                ),
            };
            out.commit()?;
            let shown = target.display();
            target.finish().await?;
            let rows: usize = batches
                .iter()
                .filter_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<embquant_udfs::datafusion::arrow::array::UInt64Array>()
                        .map(|c| c.value(0) as usize)
                })
                .sum();
            println!(
                "wrote {rows} rows to {shown} in {:.3} s",
                t.elapsed().as_secs_f64()
            );
        }
        None => {
            let batches = df.collect().await?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if !batches.is_empty() && batches[0].num_columns() > 0 {
                println!("{}", pretty_format_batches(&batches)?);
            }
            println!(
                "{rows} row{} in {:.3} s",
                if rows == 1 { "" } else { "s" },
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Runs `embquant sql`.
pub async fn run(a: SqlArgs) -> Result<()> {
    // Any bucket the SQL names is reachable, not only those of --table.
    let runtime = embquant_udfs::stores::runtime()?;
    let ctx = SessionContext::new_with_config_rt(embquant_udfs::session_config(), runtime);
    embquant_udfs::register_all(&ctx);
    let mut inputs = Inputs::default();
    for t in &a.tables {
        register(&ctx, t).await?;
        if let Some((name, path)) = t.split_once('=') {
            inputs.add_table(name.trim(), path.trim())?;
        }
    }
    match &a.query {
        Some(q) => execute(&ctx, q, a.output.as_deref(), &inputs, a.read_only).await,
        None => {
            if a.output.is_some() {
                bail!("--output needs a query");
            }
            repl(&ctx, &inputs, a.read_only).await
        }
    }
}

async fn repl(ctx: &SessionContext, inputs: &Inputs, read_only: bool) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut rl = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".embquant_sql_history"));
    if let Some(h) = &history {
        // No history yet is fine.
        let _ = rl.load_history(h);
    }
    println!(
        "embquant sql: end statements with ';', \\q to quit. Functions: {}",
        function_names().join(", ")
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() {
            "embquant> "
        } else {
            "       -> "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                let t = line.trim();
                if buf.is_empty() && matches!(t, "\\q" | "quit" | "exit") {
                    break;
                }
                if t.is_empty() {
                    continue;
                }
                buf.push_str(&line);
                buf.push('\n');
                if !t.ends_with(';') {
                    continue;
                }
                let sql = std::mem::take(&mut buf);
                let _ = rl.add_history_entry(sql.trim());
                if let Err(e) = execute(
                    ctx,
                    sql.trim().trim_end_matches(';'),
                    None,
                    inputs,
                    read_only,
                )
                .await
                {
                    eprintln!("error: {e:#}");
                }
            }
            Err(ReadlineError::Interrupted) => buf.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        if let Err(e) = rl.save_history(h) {
            eprintln!("warning: cannot save the history to {}: {e}", h.display());
        }
    }
    Ok(())
}

fn function_names() -> Vec<String> {
    let mut v: Vec<String> = embquant_udfs::functions()
        .iter()
        .map(|f| f.name().to_string())
        .chain(
            embquant_udfs::aggregate_functions()
                .iter()
                .map(|f| f.name().to_string()),
        )
        .collect();
    v.push("tiered_search".into());
    v
}
