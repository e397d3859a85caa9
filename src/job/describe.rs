//! What `embquant inspect --json` prints: a Parquet file's rows, row groups, fields and
//! embquant metadata, as one JSON document (the CLI and the Python `inspect` share it).

use std::path::Path;

use crate::metadata::{FileMetadata, METADATA_KEY};
use crate::{Error, Result};

/// The description of the Parquet file at `path` (a local path or a URL).
pub fn describe(path: &Path) -> Result<serde_json::Value> {
    let input = crate::io::open_file(path)?;
    let footer = input
        .footer
        .clone()
        .ok_or_else(|| Error::Internal(format!("{}: no footer", path.display())))?;
    let meta = footer.metadata();
    let fm = meta.file_metadata();
    let recipe = fm
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
        .and_then(|k| k.value.as_deref())
        .map(FileMetadata::from_json)
        .transpose()
        .map_err(|e| e.in_file(path.display(), METADATA_KEY))?;
    let fields: Vec<serde_json::Value> = footer
        .schema()
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
                "embquant": f.metadata().contains_key(METADATA_KEY),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "file": path.display().to_string(),
        "rows": fm.num_rows(),
        "row_groups": meta.num_row_groups(),
        "fields": fields,
        "embquant": recipe,
    }))
}
