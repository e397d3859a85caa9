//! Outputs at a URL (`-o s3://bucket/key`): the command writes to a local staging
//! directory through the same atomic writers as a local output, then uploads the result
//! when it is complete. An object appears only when its upload completes (a PUT, or a
//! multipart upload aborted on error), so a failed or interrupted command leaves no partial
//! object. A directory output uploads its parts first and its manifest last, into a prefix
//! that must hold nothing yet: while it uploads, a reader of the prefix sees some parts and
//! no manifest (embquant's readers and any reader that follows the manifest see no output);
//! once the manifest is there, every part is; if the upload fails or is cancelled, the parts
//! already uploaded are deleted.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use embquant::io::object::store_for;
use embquant::io::{Inputs, Location, ObjectUrl};

use crate::signals::CancelOnDrop;

/// Where a command writes: a local path, or a staging path uploaded to a URL by
/// [`Output::finish`].
pub(crate) struct Output {
    url: Option<String>,
    local: PathBuf,
    /// Removed (with anything left in it) when the output is dropped.
    _staging: Option<tempfile::TempDir>,
}

impl Output {
    /// The output `target` names (a path, a `file:` URL or an object URL, read by
    /// [`Location::parse`]), refused when it is one of `inputs`, holds one (`dir`: a
    /// directory output) or lies inside an input directory or prefix.
    pub(crate) fn new(target: &Path, inputs: &Inputs, dir: bool) -> Result<Self> {
        let loc = Location::of_path(target)?;
        inputs.check(&loc, dir, &target.display().to_string())?;
        let o = match loc {
            Location::Local(local) => {
                return Ok(Output {
                    url: None,
                    local,
                    _staging: None,
                })
            }
            Location::Object(o) => o,
        };
        refuse_unserved_memory(&o)?;
        let url = o.url();
        store_for(&url)?;
        let name = o.key.rsplit('/').next().filter(|n| !n.is_empty());
        let name = name.unwrap_or("output").to_string();
        let staging = staging_dir()?;
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

    /// Uploads a staged output (nothing to do for a local one), on a blocking thread. When
    /// the command is cancelled (its future dropped: Ctrl-C), the upload stops before its
    /// next part and a multipart upload is aborted.
    pub(crate) async fn finish(self) -> Result<()> {
        if self.url.is_none() {
            return Ok(());
        }
        blocking_upload(move |cancel| self.upload(cancel)).await
    }

    fn upload(&self, cancel: &AtomicBool) -> Result<()> {
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
            // A failed or cancelled upload deletes the parts already uploaded, so a failed
            // job leaves no partial set (the manifest, last, was never written); a part that
            // cannot be deleted is logged, and the error reported is the upload's.
            let mut done: Vec<String> = Vec::new();
            for e in entries {
                let name = e.file_name().expect("a directory entry").to_string_lossy();
                let part = format!("{url}/{name}");
                if let Err(err) = store.upload_cancellable(&e, &part, cancel) {
                    for d in &done {
                        if let Err(de) = store.delete(d) {
                            tracing::warn!("removing {d} after a failed upload: {de}");
                        }
                    }
                    return Err(err.into());
                }
                done.push(part);
            }
        } else {
            store.upload_cancellable(&self.local, url, cancel)?;
        }
        Ok(())
    }
}

/// Runs `upload` on a blocking thread with a flag set if the calling future is dropped
/// (the command cancelled), so the upload can stop and abort.
async fn blocking_upload(
    upload: impl FnOnce(&AtomicBool) -> Result<()> + Send + 'static,
) -> Result<()> {
    let cancel = CancelOnDrop::default();
    let flag = Arc::clone(&cancel.0);
    let r = tokio::task::spawn_blocking(move || upload(&flag))
        .await
        .context("the upload thread failed")?;
    drop(cancel);
    r
}

/// A directory of named files (the recall report): a local directory, or at a URL a local
/// staging directory whose files are uploaded one by one into the prefix by
/// [`ReportDir::finish`], each object replaced whole (a reader sees the old object or the new
/// one, never a part). Files the command may reuse (a cache) are fetched from the prefix
/// into the staging directory first.
pub(crate) struct ReportDir {
    url: Option<String>,
    local: PathBuf,
    _staging: Option<tempfile::TempDir>,
}

impl ReportDir {
    /// The directory `target` names. `names` are the files the command writes there (none may
    /// be one of `inputs`, and the directory may not lie inside an input directory or
    /// prefix); `reuse` those fetched first when the prefix holds them.
    pub(crate) fn new(
        target: &Path,
        names: &[&str],
        inputs: &Inputs,
        reuse: &[&str],
    ) -> Result<Self> {
        let loc = Location::of_path(target)?;
        let shown = target.display().to_string();
        // The directory itself may hold inputs (nothing in it is deleted), but may not lie
        // inside an input directory or prefix.
        inputs.check(&loc, false, &shown)?;
        let o = match loc {
            Location::Local(local) => {
                for name in names {
                    let file = Location::Local(local.join(name));
                    inputs.check(&file, false, &format!("{shown}/{name}"))?;
                }
                return Ok(ReportDir {
                    url: None,
                    local,
                    _staging: None,
                });
            }
            Location::Object(o) => o,
        };
        refuse_unserved_memory(&o)?;
        let url = o.url();
        for name in names {
            let file = format!("{url}/{name}");
            inputs.check_spelling(&file, false)?;
        }
        let store = store_for(&url)?;
        let staging = staging_dir()?;
        for name in reuse {
            let from = format!("{url}/{name}");
            if store.exists(&from)? {
                let bytes = embquant::io::read_object(&from)?;
                let to = staging.path().join(name);
                std::fs::write(&to, bytes).with_context(|| format!("writing {}", to.display()))?;
            }
        }
        Ok(ReportDir {
            local: staging.path().to_path_buf(),
            url: Some(url),
            _staging: Some(staging),
        })
    }

    /// The local directory the command writes to.
    pub(crate) fn path(&self) -> &Path {
        &self.local
    }

    /// Where the files end up, for messages.
    pub(crate) fn display(&self) -> String {
        match &self.url {
            Some(u) => u.clone(),
            None => self.local.display().to_string(),
        }
    }

    /// Uploads the staged files among `names` (nothing to do for a local directory), as
    /// [`Output::finish`] does.
    pub(crate) async fn finish(self, names: &'static [&'static str]) -> Result<()> {
        let Some(url) = self.url.clone() else {
            return Ok(());
        };
        blocking_upload(move |cancel| {
            let store = store_for(&url)?;
            for name in names {
                let from = self.local.join(name);
                if from.exists() {
                    store.upload_cancellable(&from, &format!("{url}/{name}"), cancel)?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Refuses a `memory://` output no store of this process serves: it would be written to a
/// store that vanishes when the command exits.
fn refuse_unserved_memory(o: &ObjectUrl) -> Result<()> {
    if o.canonical_scheme() == "memory" && !embquant::io::object::is_served(&o.url()) {
        bail!(
            "{}: a memory:// store lives only inside one process; what a command writes there is lost when it exits",
            o.url()
        );
    }
    Ok(())
}

/// A local directory for what a command uploads when complete, removed when dropped.
fn staging_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".embquant-upload-")
        .tempdir()
        .context("making a local staging directory for the upload (set TMPDIR to choose where)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staged directory output at `url`: parts, a manifest, and (if `bad`) an entry that
    /// cannot be uploaded (a directory where a part should be) after the first two parts.
    fn staged(url: &str, bad: bool) -> Output {
        store_for(url).unwrap();
        let out = Output::new(Path::new(url), &Inputs::new(), true).unwrap();
        let dir = out.path();
        std::fs::create_dir(dir).unwrap();
        for i in 0..2 {
            std::fs::write(dir.join(format!("part-{i}.parquet")), vec![i as u8; 1000]).unwrap();
        }
        if bad {
            std::fs::create_dir(dir.join("part-2.parquet")).unwrap();
        } else {
            std::fs::write(dir.join("part-2.parquet"), b"third").unwrap();
        }
        std::fs::write(dir.join(embquant::io::MANIFEST_NAME), b"{}").unwrap();
        out
    }

    #[test]
    fn a_directory_output_appears_whole_or_not_at_all() {
        let url = "memory://output-test/set";
        staged(url, true)
            .upload(&AtomicBool::new(false))
            .unwrap_err();
        let store = store_for(url).unwrap();
        assert_eq!(
            store.objects_below(url).unwrap(),
            Vec::<String>::new(),
            "the parts uploaded before the failure were deleted"
        );
        staged(url, false).upload(&AtomicBool::new(false)).unwrap();
        let listed = store.objects_below(url).unwrap();
        assert_eq!(listed.len(), 4, "{listed:?}");
        assert!(listed.contains(&format!("{url}/{}", embquant::io::MANIFEST_NAME)));
    }

    #[test]
    fn a_cancelled_directory_output_leaves_nothing() {
        let url = "memory://output-test/cancelled";
        let r = staged(url, false).upload(&AtomicBool::new(true));
        let e = r.unwrap_err();
        assert!(
            matches!(
                e.downcast_ref::<embquant::Error>(),
                Some(embquant::Error::Cancelled)
            ),
            "{e:?}"
        );
        assert_eq!(
            store_for(url).unwrap().objects_below(url).unwrap(),
            Vec::<String>::new()
        );
    }
}
