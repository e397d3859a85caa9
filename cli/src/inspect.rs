//! `embquant inspect`: a Parquet file's schema, row groups and embquant recipes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use embquant::metadata::{ColumnRecipe, FileMetadata, METADATA_KEY};

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A Parquet file, or a directory output (`--target-file-rows`): each of its parts.
    pub(crate) file: PathBuf,
    /// Print JSON (for a directory, an array with one object per part).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Inspects a file, or each part of a directory (in row order, as search and sql read it).
pub(crate) fn inspect(path: &Path, json: bool) -> Result<()> {
    if !path.is_dir() {
        return inspect_file(path, json);
    }
    let files = embquant::io::discover(&[path.to_string_lossy().into_owned()])?;
    if json {
        let all = files
            .iter()
            .map(|f| embquant::job::describe(&f.path))
            .collect::<embquant::Result<Vec<_>>>()?;
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    println!(
        "{}: a directory of {} Parquet file(s), {rows} rows",
        path.display(),
        files.len()
    );
    for f in &files {
        println!();
        inspect_file(&f.path, false)?;
    }
    Ok(())
}

fn inspect_file(path: &Path, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&embquant::job::describe(path)?)?
        );
        return Ok(());
    }
    // The library's one reader: the footer parsed once, corrupt footers an error.
    let input = embquant::io::open_file(path)?;
    let footer = input.footer.clone().context("the footer")?;
    let meta = footer.metadata();
    let fm = meta.file_metadata();
    let kv = fm
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
        .and_then(|k| k.value.clone());
    let recipe = kv
        .as_deref()
        .map(FileMetadata::from_json)
        .transpose()
        .with_context(|| format!("{}: embquant metadata", path.display()))?;
    let schema = footer.schema().clone();
    println!(
        "{}: {} rows, {} row group(s), {} bytes",
        path.display(),
        fm.num_rows(),
        meta.num_row_groups(),
        input.bytes
    );
    println!("schema:");
    for f in schema.fields() {
        let tag = match ColumnRecipe::from_field_metadata(f.metadata())? {
            Some((r, cal)) => format!(
                "  <- {} of {:?}, {} B/vector{}{}{}",
                r.scheme,
                r.source_column,
                r.bytes_per_vector,
                match (r.rabitq_bits, &r.sign_column) {
                    (Some(b), Some(s)) => format!(
                        ", the extra bits of {b}-bit RaBitQ ({} per dimension, with the sign bits of {s:?})",
                        b - 1
                    ),
                    _ => String::new(),
                },
                match (r.rotation, r.code_bits) {
                    (Some(embquant::Rotation::Hadamard { rounds, seed }), Some(b)) => format!(
                        ", {b} bits after a randomized Hadamard rotation ({rounds} rounds, seed {seed})"
                    ),
                    (Some(embquant::Rotation::None), Some(b)) => format!(", {b} bits, not rotated"),
                    _ => String::new(),
                },
                cal.map_or(String::new(), |c| format!(
                    ", calibration {}",
                    c.fingerprint()
                ))
            ),
            None => String::new(),
        };
        println!("  {}: {}{}", f.name(), f.data_type(), tag);
    }
    match recipe {
        None => println!("no embquant metadata"),
        Some(m) => {
            let c = &m.calibration;
            println!(
                "embquant {} (format {}): source column {:?}, {} input file(s), {} input rows",
                m.embquant_version,
                m.format_version,
                m.lineage.source_column,
                m.lineage.inputs.len(),
                m.lineage.input_rows
            );
            println!(
                "calibration: {} over {} rows, dim {}, fingerprint {}, degenerate dims {:?}",
                c.method(),
                c.rows(),
                c.dim(),
                c.fingerprint(),
                c.degenerate_dims()
            );
            let w: Vec<f32> = c.lo().iter().zip(c.hi()).map(|(l, h)| h - l).collect();
            let (wmin, wmax) = w
                .iter()
                .fold((f32::INFINITY, 0f32), |(a, b), &x| (a.min(x), b.max(x)));
            println!("  range widths {wmin:.3e} .. {wmax:.3e}");
            for col in &m.columns {
                println!(
                    "  {}: {} ({}), {} B/vector, clipped {} ({:.4}%)",
                    col.recipe.name,
                    col.recipe.scheme,
                    col.recipe.arrow_type,
                    col.recipe.bytes_per_vector,
                    col.clipped,
                    100.0 * col.clip_rate
                );
            }
        }
    }
    Ok(())
}
