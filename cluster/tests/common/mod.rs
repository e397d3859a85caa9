//! Shared by the cluster tests: shards of the bundled MiniLM slice, local reference runs and
//! comparisons of Parquet outputs.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};

use embquant::arrow_array::RecordBatch;
use embquant::job::QuantizeSpec;
use embquant::job::{self, InputFile, NoProgress};
use embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use embquant::parquet::arrow::ArrowWriter;
use embquant::search::{load_corpus, QueryReader, QuerySet, TierSpec};
use embquant::{Calibration, FileMetadata, METADATA_KEY};

/// The binary under test (the S3 harness, shared with the CLI's tests, runs it).
pub const BIN: &str = env!("CARGO_BIN_EXE_embquant-cluster");

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The bundled 5,000-row MiniLM slice.
pub fn minilm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/minilm-wordnet-5k.parquet")
}

/// The bundled 50 queries.
pub fn queries() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/minilm-wordnet-queries-50.parquet")
}

/// Writes the MiniLM slice as `n` shard files in `dir` (row order kept), small row groups.
pub fn write_shards(dir: &Path, n: usize) -> Vec<String> {
    write_shards_repeated(dir, n, 1)
}

/// [`write_shards`] of the slice repeated `times` times (larger shards).
pub fn write_shards_repeated(dir: &Path, n: usize, times: usize) -> Vec<String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(minilm()).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let batches: Vec<RecordBatch> = (0..times).flat_map(|_| batches.clone()).collect();
    let all = embquant_ballista::datafusion::arrow::compute::concat_batches(
        &batches[0].schema(),
        &batches,
    )
    .unwrap();
    let per = all.num_rows().div_ceil(n);
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let start = i * per;
            let len = per.min(all.num_rows() - start);
            let path = dir.join(format!("shard-{i}.parquet"));
            let props = embquant::parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(500))
                .build();
            let mut w =
                ArrowWriter::try_new(File::create(&path).unwrap(), all.schema(), Some(props))
                    .unwrap();
            w.write(&all.slice(start, len)).unwrap();
            w.close().unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect()
}

/// Every batch of a Parquet file, and its schema (with field metadata) and footer metadata.
pub fn read_parquet(path: &Path) -> (Vec<RecordBatch>, FileMetadata) {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let footer = b
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
        .and_then(|k| k.value.clone())
        .unwrap_or_else(|| panic!("{}: no embquant footer metadata", path.display()));
    let meta = FileMetadata::from_json(&footer).unwrap();
    (b.build().unwrap().map(|b| b.unwrap()).collect(), meta)
}

/// The local job on one shard, as `embquant quantize SHARD -o OUT --calibration CAL` runs it.
pub async fn quantize_locally(shard: &str, out: &Path, spec: &QuantizeSpec, cal: &Calibration) {
    let files = job::discover(&[shard.to_string()]).unwrap();
    job::quantize(
        &files,
        out,
        cal.clone(),
        &spec.job_options().unwrap(),
        &NoProgress,
    )
    .await
    .unwrap();
}

/// Asserts that two embquant Parquet files hold the same rows, schema (field metadata
/// included) and footer metadata.
pub fn assert_same_output(got: &Path, want: &Path) {
    let (gb, gm) = read_parquet(got);
    let (wb, wm) = read_parquet(want);
    assert_eq!(
        gm,
        wm,
        "footer metadata of {} vs {}",
        got.display(),
        want.display()
    );
    assert_eq!(gb.len(), wb.len(), "batches of {}", got.display());
    for (g, w) in gb.iter().zip(&wb) {
        assert_eq!(g.schema(), w.schema(), "schema (with field metadata)");
        assert_eq!(g, w, "rows of {} vs {}", got.display(), want.display());
    }
}

/// Top-10 of the bundled queries over `files` with the chain `tiers`: (row, score bits).
pub fn search(files: &[InputFile], tiers: &str) -> Vec<Vec<(u32, u32)>> {
    let chain = TierSpec::parse_chain(tiers).unwrap();
    let loaded = load_corpus(files, "embedding", None, &chain).unwrap();
    let QuerySet { values, .. } =
        QueryReader::new("embedding", None, loaded.truncation, loaded.corpus.dim())
            .read_files(&job::discover(&[queries().to_string_lossy().into_owned()]).unwrap())
            .unwrap();
    loaded
        .corpus
        .search(&values, 10, &chain)
        .unwrap()
        .iter()
        .map(|q| q.iter().map(|h| (h.row, h.score.to_bits())).collect())
        .collect()
}

/// The local `embedding_calibration` aggregate over `shards` (plain DataFusion).
pub async fn local_aggregate(shards: &[String], method: &str) -> Calibration {
    use embquant_ballista::datafusion::prelude::SessionContext;
    let ctx = SessionContext::new_with_config(embquant_udfs::session_config());
    embquant_udfs::register_all(&ctx);
    let files = job::discover(shards).unwrap();
    embquant_ballista::pipeline::register_files(&ctx, "t", &files)
        .await
        .unwrap();
    let b = ctx
        .sql(&format!(
            "SELECT embedding_calibration(embedding, '{method}') FROM t"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let c = b[0]
        .column(0)
        .as_any()
        .downcast_ref::<embquant::arrow_array::StringArray>()
        .unwrap();
    Calibration::from_json(c.value(0)).unwrap()
}
