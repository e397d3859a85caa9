//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, ArrayRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A file of the full MiniLM set beside the repository, or `None` with a visible message.
pub fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/minilm-wordnet")
        .join(name);
    if p.exists() {
        Some(p)
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        // In CI the full set must be there: a skipped test there would hide a failure.
        panic!(
            "{} not found, and CI=true: CI runs with ../shared beside the repository",
            p.display()
        );
    } else {
        eprintln!(
            "SKIPPED: {} not found (the full MiniLM set lives beside the repository)",
            p.display()
        );
        None
    }
}

/// One column of a Parquet file, concatenated.
pub fn column(path: &Path, name: &str) -> ArrayRef {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let parts: Vec<ArrayRef> = reader
        .map(|b| b.unwrap().column_by_name(name).unwrap().clone())
        .collect();
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    arrow_select::concat::concat(&refs).unwrap()
}
