//! [`read_reference`]: the calibration stored in an embquant file (field metadata first,
//! then the footer) or a calibration JSON.

use std::path::Path;

use crate::calibration::Calibration;
use crate::codec::matryoshka::MatryoshkaOptions;
use crate::error::{Error, Result};
use crate::metadata::{ColumnRecipe, FileMetadata, METADATA_KEY};

/// A reference calibration and where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The calibration.
    pub calibration: Calibration,
    /// The float column the codes were made from (unknown for a calibration JSON).
    pub source_column: Option<String>,
    /// The Matryoshka prefix applied before encoding: apply it to new data before comparing.
    pub matryoshka: Option<MatryoshkaOptions>,
    /// Where it was found: `field metadata of "embedding_int8"`, `file footer` or
    /// `calibration JSON`.
    pub origin: String,
}

/// Reads the calibration stored in an embquant file: from the field metadata of a quantized
/// column made from `source_column` (any source when `None`), else from the footer. A
/// `.json` path is read as a calibration JSON; a directory (a directory output) as each of
/// its Parquet files, which must carry one calibration. A file without a calibration, or
/// whose calibrations belong to other source columns, is an error naming it.
pub fn read_reference(path: &Path, source_column: Option<&str>) -> Result<Reference> {
    let shown = path.display();
    let col = source_column.unwrap_or("*");
    if path.extension().is_some_and(|e| e == "json") {
        let json = crate::io::read_object_to_string(&path.to_string_lossy())?;
        let calibration = Calibration::from_json(&json).map_err(|e| e.in_file(&shown, col))?;
        return Ok(Reference {
            calibration,
            source_column: None,
            matryoshka: None,
            origin: "calibration JSON".into(),
        });
    }
    if path.is_dir() {
        return read_reference_dir(path, source_column);
    }
    let builder = crate::io::open_file(path)?.reader()?;
    let wanted = |s: &str| source_column.is_none_or(|c| c == s);
    // Field metadata: the calibrated columns (int8, int4, centered binary, rabitq).
    let mut found: Vec<(String, ColumnRecipe, Calibration)> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for f in builder.schema().fields() {
        let parsed = ColumnRecipe::from_field_metadata(f.metadata())
            .map_err(|e| e.in_file(&shown, f.name()))?;
        if let Some((recipe, Some(cal))) = parsed {
            if wanted(&recipe.source_column) {
                found.push((f.name().clone(), recipe, cal));
            } else {
                others.push(recipe.source_column);
            }
        }
    }
    if let Some((name, recipe, cal)) = found.first() {
        if let Some((other, _, c)) = found.iter().find(|(_, _, c)| c != cal) {
            return Err(Error::InvalidCalibration(format!(
                "columns {name:?} and {other:?} carry different calibrations ({} and {})",
                cal.fingerprint(),
                c.fingerprint()
            ))
            .in_file(&shown, col));
        }
        return Ok(Reference {
            calibration: cal.clone(),
            source_column: Some(recipe.source_column.clone()),
            matryoshka: recipe.truncation.map(|t| MatryoshkaOptions {
                dims: t.dims,
                normalize: t.normalized,
            }),
            origin: format!("field metadata of {name:?}"),
        });
    }
    // The footer.
    let footer = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
        .and_then(|k| k.value.clone());
    if let Some(json) = footer {
        let m = FileMetadata::from_json(&json).map_err(|e| e.in_file(&shown, col))?;
        if wanted(&m.lineage.source_column) {
            let truncation = m.columns.iter().find_map(|c| c.recipe.truncation);
            return Ok(Reference {
                calibration: m.calibration,
                source_column: Some(m.lineage.source_column),
                matryoshka: truncation.map(|t| MatryoshkaOptions {
                    dims: t.dims,
                    normalize: t.normalized,
                }),
                origin: "file footer".into(),
            });
        }
        others.push(m.lineage.source_column);
    }
    if !others.is_empty() {
        others.sort();
        others.dedup();
        return Err(Error::CalibrationMismatch(format!(
            "the reference calibrations were made from column(s) {others:?}, not {col:?}"
        ))
        .in_file(&shown, col));
    }
    Err(Error::MissingCalibrationData(
        "from this file: no column carries `embquant.calibration` field metadata and the footer has no `embquant` key (write the reference with `embquant quantize`)",
    )
    .in_file(&shown, col))
}

/// [`read_reference`] of every Parquet file below `dir`: one calibration, or an error naming
/// the first file that carries another.
fn read_reference_dir(dir: &Path, source_column: Option<&str>) -> Result<Reference> {
    let files = crate::io::discover(&[dir.to_string_lossy().into_owned()])?;
    let mut first: Option<(Reference, &Path)> = None;
    for f in &files {
        let r = read_reference(&f.path, source_column)?;
        match &first {
            None => first = Some((r, &f.path)),
            Some((r0, p0)) if r0.calibration != r.calibration => {
                return Err(Error::InvalidCalibration(format!(
                    "{} carries calibration {} and {} carries {}: a reference directory holds one calibration",
                    p0.display(),
                    r0.calibration.fingerprint(),
                    f.path.display(),
                    r.calibration.fingerprint()
                )))
            }
            Some(_) => {}
        }
    }
    let (r, _) = first.ok_or_else(|| Error::Internal("discover returned no file".into()))?;
    Ok(r)
}
