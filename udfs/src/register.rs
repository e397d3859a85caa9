//! Registering Parquet tables the way embquant writes them.

use std::path::Path;
use std::sync::Arc;

use datafusion::common::{plan_datafusion_err, DataFusionError, Result};
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SessionContext;
use datafusion::prelude::ParquetReadOptions;
use embquant::io::DirManifest;

/// An error of the core, kept typed for the caller to match on.
fn typed(e: embquant::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Registers the Parquet table `name` at `path` (a file, a directory of files, or a glob).
///
/// A directory that `embquant quantize --target-file-rows` wrote is read as one table of
/// exactly the parts its manifest lists (other files there are not part of it), with the
/// first part's schema: each part's footer carries its own lineage (part number, first
/// row), which DataFusion's schema inference would refuse to merge. A manifest naming
/// anything but plain file names inside the directory (`../x.parquet`, `/etc/passwd`) is
/// an error.
pub async fn register_parquet(ctx: &SessionContext, name: &str, path: &str) -> Result<()> {
    let dir = Path::new(path);
    // A manifest that cannot be read or names anything but plain files inside the
    // directory is an error, never a fallback to reading the directory as it is.
    let manifest = DirManifest::load(dir).map_err(typed)?;
    let Some(manifest) = manifest else {
        return ctx
            .register_parquet(name, path, ParquetReadOptions::default())
            .await;
    };
    let dir = embquant::io::resolve(dir);
    let first = manifest
        .parts
        .first()
        .ok_or_else(|| plan_datafusion_err!("{path}: its manifest lists no parts"))?;
    let first = dir.join(first);
    let schema = embquant::io::open_file(&first)
        .and_then(|f| f.schema())
        .map_err(typed)?;
    let urls = manifest
        .parts
        .iter()
        .map(|p| {
            let p = dir.join(p);
            ListingTableUrl::parse(
                p.to_str()
                    .ok_or_else(|| plan_datafusion_err!("{}: not UTF-8", p.display()))?,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    // The session's Parquet options (keep field metadata, pruning ...), as
    // `register_parquet` would take them.
    let options = ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    tracing::debug!(
        name,
        path,
        parts = manifest.parts.len(),
        "registered embquant parts"
    );
    Ok(())
}
