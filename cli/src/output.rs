//! Outputs at a URL (`-o s3://bucket/key`): the command writes to a local staging
//! directory through the same atomic writers as a local output, then uploads the result
//! when it is complete. An object appears only when its upload completes (a PUT, or a
//! multipart upload aborted on error), so a failed or interrupted command leaves no partial
//! object. A directory output uploads its parts first and its manifest last, into a prefix
//! that must hold nothing yet.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use embquant::io::object::store_for;

/// Where a command writes: a local path, or a staging path uploaded to a URL by
/// [`Output::finish`].
pub(crate) struct Output {
    url: Option<String>,
    local: PathBuf,
    /// Removed (with anything left in it) when the output is dropped.
    _staging: Option<tempfile::TempDir>,
}

impl Output {
    /// The output `target` names; `inputs` are the command's inputs (an output at a URL
    /// that is one of them, or a prefix holding one, is refused).
    pub(crate) fn new<P: AsRef<Path>>(target: &Path, inputs: &[P]) -> Result<Self> {
        let s = target.to_string_lossy();
        if !embquant::io::is_url(&s) {
            return Ok(Output {
                url: None,
                local: target.to_path_buf(),
                _staging: None,
            });
        }
        if let Some(local) = s.strip_prefix("file://") {
            return Ok(Output {
                url: None,
                local: PathBuf::from(local),
                _staging: None,
            });
        }
        let url = s.trim_end_matches('/').to_string();
        for i in inputs {
            let i = i.as_ref().to_string_lossy();
            if i == url || i.starts_with(&format!("{url}/")) {
                bail!("the output {url} would replace the input {i}");
            }
        }
        store_for(&url)?;
        let name = url.rsplit('/').next().unwrap_or("output").to_string();
        let staging = tempfile::Builder::new()
            .prefix(".embquant-upload-")
            .tempdir()
            .context(
                "making a local staging directory for the upload (set TMPDIR to choose where)",
            )?;
        Ok(Output {
            local: staging.path().join(name),
            url: Some(url),
            _staging: Some(staging),
        })
    }

    /// The local path the command writes to.
    pub(crate) fn path(&self) -> &Path {
        &self.local
    }

    /// Where the output ends up, for messages.
    pub(crate) fn display(&self) -> String {
        match &self.url {
            Some(u) => u.clone(),
            None => self.local.display().to_string(),
        }
    }

    /// Uploads a staged output (nothing to do for a local one).
    pub(crate) fn finish(self) -> Result<()> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        let store = store_for(url)?;
        if self.local.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&self.local)
                .with_context(|| format!("listing {}", self.local.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            let taken = store.objects_below(url)?;
            if let Some(first) = taken.first() {
                bail!(
                    "{url} already holds objects ({first} and {} more): a directory output goes to an empty prefix",
                    taken.len() - 1
                );
            }
            // The manifest last: a reader that finds it finds every part.
            entries.sort_by_key(|p| {
                (
                    p.file_name() == Some(embquant::io::MANIFEST_NAME.as_ref()),
                    p.clone(),
                )
            });
            for e in entries {
                let name = e.file_name().expect("a directory entry").to_string_lossy();
                store.upload(&e, &format!("{url}/{name}"))?;
            }
        } else {
            store.upload(&self.local, url)?;
        }
        Ok(())
    }
}
