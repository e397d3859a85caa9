//! `embquant demo`: calibrate -> quantize -> inspect -> search -> recall on the bundled
//! sample of real embeddings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::calibrate::{calibrate, CalibrateArgs};
use crate::common::{write_atomic, CalibrationArgs, InputArgs};
use crate::inspect::inspect;
use crate::quantize::{quantize, QuantizeArgs};
use crate::search::{search, SearchArgs};

/// The bundled sample: all-MiniLM-L6-v2 embeddings of WordNet glosses (see tests/data/README.md).
static SAMPLE: &[u8] = include_bytes!("../../tests/data/minilm-wordnet-5k.parquet");
/// 50 queries from the same set (disjoint from the corpus).
static QUERIES: &[u8] = include_bytes!("../../tests/data/minilm-wordnet-queries-50.parquet");

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Directory for the demo's files.
    #[arg(long, default_value = "embquant-demo")]
    pub(crate) dir: PathBuf,
}

pub(crate) async fn demo(dir: &Path, quiet: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let input = dir.join("minilm-wordnet.parquet");
    write_atomic(&input, SAMPLE)?;
    println!(
        "1. wrote the bundled sample: {} (all-MiniLM-L6-v2 embeddings of WordNet 3.0 glosses)",
        input.display()
    );
    let inputs = vec![input.display().to_string()];
    let cal_path = dir.join("calibration.json");
    println!(
        "\n2. embquant calibrate {} --method quantile:0.999 --output {}",
        input.display(),
        cal_path.display()
    );
    calibrate(
        CalibrateArgs {
            input: InputArgs {
                inputs: inputs.clone(),
                column: "embedding".into(),
                batch_rows: 1024,
                concurrency: 1,
            },
            calibration: CalibrationArgs {
                method: "quantile:0.999".into(),
                sample_rows: None,
                seed: 42,
            },
            dims: None,
            no_sketch: false,
            output: cal_path.clone(),
        },
        quiet,
    )
    .await?;
    let out = dir.join("minilm-wordnet.quantized.parquet");
    println!(
        "\n3. embquant quantize {} --scheme int8,int4,binary,f16,rabitq --calibration {} --output {}",
        input.display(),
        cal_path.display(),
        out.display()
    );
    quantize(
        QuantizeArgs {
            input: InputArgs {
                inputs,
                column: "embedding".into(),
                batch_rows: 1024,
                concurrency: 1,
            },
            calibration: CalibrationArgs {
                method: "minmax".into(),
                sample_rows: None,
                seed: 42,
            },
            output: out.clone(),
            scheme: vec![
                "int8".into(),
                "int4".into(),
                "binary".into(),
                "f16".into(),
                "rabitq".into(),
            ],
            binary_threshold: "zero".into(),
            dims: None,
            calibration_file: Some(cal_path),
            drop_source: false,
            row_group_rows: 65_536,
            target_file_rows: None,
            int8_layout: "binary".into(),
            zstd_level: 1,
            rabitq_rotation: "hadamard".into(),
            rabitq_bits: None,
            overwrite: false,
        },
        quiet,
    )
    .await?;
    println!("\n4. embquant inspect {}", out.display());
    inspect(&out, false)?;
    let queries = dir.join("queries.parquet");
    write_atomic(&queries, QUERIES)?;
    let results = dir.join("results.parquet");
    println!(
        "\n5. embquant search --corpus {} --queries {} --k 10 --tiers rabitq:4,int8:2,float --id-column id --query-id-column id --output {}",
        out.display(),
        queries.display(),
        results.display()
    );
    search(SearchArgs {
        corpus: vec![out.display().to_string()],
        queries: queries.display().to_string(),
        k: 10,
        tiers: "rabitq:4,int8:2,float".into(),
        column: "embedding".into(),
        id_column: Some("id".into()),
        query_id_column: Some("id".into()),
        output: results,
    })
    .await?;
    let report = dir.join("recall");
    println!(
        "\n6. embquant recall --corpus {} --queries {} --target-recall 0.95@10 --report {}",
        input.display(),
        queries.display(),
        report.display()
    );
    crate::recall::recall(
        crate::recall::RecallArgs {
            corpus: vec![input.display().to_string()],
            queries: Some(queries.display().to_string()),
            sample_queries: None,
            column: "embedding".into(),
            k: vec![1, 10, 100],
            configs: None,
            dims: Vec::new(),
            target_recall: Some("0.95@10".into()),
            min_recall: Vec::new(),
            calibration_rows: None,
            method: "minmax".into(),
            seed: 42,
            code_budget_mb: 1024,
            binary_threshold: "zero".into(),
            rabitq_rotation: "hadamard".into(),
            report,
        },
        quiet,
    )
    .await
}
