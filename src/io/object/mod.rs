//! Object stores as byte sources (feature `cloud`): `s3://`, `gs://`, `az://` / `abfss://`
//! and `memory://` URLs, read through the `object_store` crate with ranged GETs.
//!
//! - [`ObjectStoreStore`] lists and opens the objects of one store (a bucket or container)
//!   and implements [`Store`], so discovery, the Parquet readers and every job read objects
//!   exactly as they read local files. An embedder that has its own `ObjectStore` (its own
//!   credentials, a proxy, a test double) passes it with a base URL, or [`register`]s it
//!   for the URLs it serves.
//! - [`ObjectSource`] is one object: while a reader streams through it, positional reads
//!   are served from a window of [`ObjectSource::WINDOW`] bytes fetched with one ranged GET,
//!   the next window fetched in the background while the reader works through the current
//!   one; a random read (a footer, a float row for rescoring) fetches just what it needs. The sync Parquet reader
//!   decodes page by page over it, so memory stays bounded by two windows per open reader
//!   however large a column chunk is (arrow-rs's async reader would buffer the whole
//!   chunk).
//! - [`store_for`] makes the store a URL names, configured from the environment the way the
//!   other tools of the field are (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_REGION`, `AWS_ENDPOINT` and `AWS_ALLOW_HTTP` for S3-compatible servers;
//!   `GOOGLE_*`; `AZURE_*`), one store per scheme and bucket for the process.
//!
//! Requests run on a small tokio runtime of their own; the synchronous readers wait for
//! them on a channel, so they may run on any thread (rayon, a blocking task) but an async
//! task of this runtime.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, LazyLock, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

pub use object_store;
pub use watch::{on_slow_request, SlowRequest, NOTICE_EVERY};

mod watch;

use super::is_url;
use super::source::{ByteSource, Store};
use crate::error::{Error, Result};

/// The runtime object-store requests run on.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("embquant-io")
        .enable_all()
        .build()
        .expect("building the object-store I/O runtime")
});

/// Runs `fut` on the I/O runtime and waits for its output.
pub(crate) fn wait<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    receive(spawn(fut))
}

/// Starts `fut` on the I/O runtime; [`receive`] waits for its output.
fn spawn<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    RUNTIME.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx
}

fn receive<T>(rx: mpsc::Receiver<T>) -> T {
    rx.recv()
        .expect("the object-store I/O runtime dropped a request")
}

/// A URL split into its store (`scheme://bucket`) and its key, normalized by
/// [`Location::parse`](super::location::Location::parse) (escapes decoded, `//` folded, dot
/// segments and query strings refused; glob characters kept).
fn split_url(url: &str) -> Result<(String, String)> {
    match super::location::Location::parse(url)? {
        super::location::Location::Object(o) => Ok((o.base(), o.key)),
        super::location::Location::Local(_) => {
            Err(Error::store_config(url, "not an object-store URL"))
        }
    }
}

/// Stores made or registered for this process, by `scheme://bucket`.
static STORES: LazyLock<Mutex<HashMap<String, Arc<ObjectStoreStore>>>> =
    LazyLock::new(Default::default);

/// Serves the URLs under `base` (`scheme://bucket`) from `store` for the rest of the
/// process: every later input or output under `base` goes to it.
pub fn register(base: &str, store: Arc<dyn ObjectStore>) -> Result<Arc<ObjectStoreStore>> {
    let (base, _) = split_url(base)?;
    register_store(ObjectStoreStore::new(store, &base))
}

/// [`register`] with a store already made (e.g. [`ObjectStoreStore::with_window`]).
pub fn register_store(store: ObjectStoreStore) -> Result<Arc<ObjectStoreStore>> {
    let base = store.base.clone();
    let s = Arc::new(store);
    STORES
        .lock()
        .expect("store registry poisoned")
        .insert(base, Arc::clone(&s));
    Ok(s)
}

/// Whether a store serving `url` was made or registered in this process (a `memory://`
/// store that was not is empty, and what is written to it is lost when the process exits).
pub fn is_served(url: &str) -> bool {
    split_url(url).is_ok_and(|(base, _)| {
        STORES
            .lock()
            .expect("store registry poisoned")
            .contains_key(&base)
    })
}

/// The store serving `url` (made from the environment on first use, then shared).
pub fn store_for(url: &str) -> Result<Arc<ObjectStoreStore>> {
    let (base, _) = split_url(url)?;
    let mut stores = STORES.lock().expect("store registry poisoned");
    if let Some(s) = stores.get(&base) {
        return Ok(Arc::clone(s));
    }
    let store = build(&base, url)?;
    let s = Arc::new(ObjectStoreStore::new(store, &base));
    stores.insert(base, Arc::clone(&s));
    Ok(s)
}

/// An object store for `base`, configured from the environment; errors name `url`, the
/// URL the user gave.
fn build(base: &str, url: &str) -> Result<Arc<dyn ObjectStore>> {
    let (scheme, bucket) = base.split_once("://").unwrap_or(("", base));
    let failed = |e: object_store::Error| Error::store_config(url, e);
    let prefix = match scheme {
        "s3" | "s3a" | "s3n" => "AWS_",
        "gs" | "gcs" => "GOOGLE_",
        "az" | "azure" | "abfs" | "abfss" | "adl" => "AZURE_",
        "memory" => return Ok(Arc::new(object_store::memory::InMemory::new())),
        other => {
            return Err(Error::store_config(
                url,
                format!(
                    "unsupported URL scheme {other:?} (s3, s3a, gs, az, azure, abfs, \
                     abfss, adl, memory, file, or a plain path)"
                ),
            ))
        }
    };
    check_settings(prefix, std::env::vars_os()).map_err(|e| Error::store_config(url, e))?;
    // One bound on a request and on its retries: an endpoint that does not answer fails
    // within about `io_timeout()`.
    let timeout = io_timeout()?;
    let retry = object_store::RetryConfig {
        retry_timeout: timeout,
        ..Default::default()
    };
    let per_request = format!("{}ms", timeout.as_millis().max(1));
    let client = object_store::ClientConfigKey::Timeout;
    // The builders parse the settings; some malformed ones panic inside them (or later,
    // inside a request): checked above, and a panic here is an error naming the URL.
    let store = crate::panic_guard::guard(|| -> Result<Arc<dyn ObjectStore>> {
        Ok(match prefix {
            "AWS_" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(format!("s3://{bucket}"))
                    .with_config(
                        object_store::aws::AmazonS3ConfigKey::Client(client),
                        per_request,
                    )
                    .with_retry(retry)
                    .build()
                    .map_err(failed)?,
            ),
            "GOOGLE_" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(format!("gs://{bucket}"))
                    .with_config(
                        object_store::gcp::GoogleConfigKey::Client(client),
                        per_request,
                    )
                    .with_retry(retry)
                    .build()
                    .map_err(failed)?,
            ),
            _ => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(base)
                    .with_config(
                        object_store::azure::AzureConfigKey::Client(client),
                        per_request,
                    )
                    .with_retry(retry)
                    .build()
                    .map_err(failed)?,
            ),
        })
    })
    .map_err(|p| Error::store_config(url, format!("the store's settings are malformed ({p})")))??;
    // A request without an answer is reported while it waits, not only when it gives up.
    Ok(Arc::new(watch::Watched::new(store, base, timeout)))
}

/// How long a request to an object store is retried before it fails: `EMBQUANT_IO_TIMEOUT`
/// seconds, [`DEFAULT_IO_TIMEOUT_SECS`] by default (object_store's own default is three
/// minutes of silence against an endpoint that does not answer).
pub fn io_timeout() -> Result<std::time::Duration> {
    match std::env::var("EMBQUANT_IO_TIMEOUT") {
        Err(_) => Ok(std::time::Duration::from_secs(DEFAULT_IO_TIMEOUT_SECS)),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
                Ok(std::time::Duration::from_secs_f64(s))
            }
            _ => Err(Error::bad_argument(
                "EMBQUANT_IO_TIMEOUT",
                format!("{v:?}: expected seconds, more than 0 and at most 86400"),
            )),
        },
    }
}

/// The default of [`io_timeout`], in seconds.
pub const DEFAULT_IO_TIMEOUT_SECS: u64 = 30;

/// Checks the store settings (`AWS_*`, `GOOGLE_*` or `AZURE_*` variables, by `prefix`) that
/// would otherwise panic inside the store or its HTTP client: values with control
/// characters (a newline in a session token), an endpoint that is not an `http(s)` URL with
/// a host, a region that is not a region name.
fn check_settings(
    prefix: &str,
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> std::result::Result<(), String> {
    let mut http_endpoint: Option<String> = None;
    let mut allow_http = false;
    for (k, v) in vars {
        let Some(k) = k.to_str() else { continue };
        if !k.starts_with(prefix) {
            continue;
        }
        if k == format!("{prefix}ALLOW_HTTP") {
            // object_store's spelling of true, case-insensitive.
            allow_http = v.to_str().is_some_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "1" | "true" | "on" | "yes" | "y"
                )
            });
        }
        let Some(v) = v.to_str() else {
            return Err(format!("{k} is not UTF-8"));
        };
        if v.chars().any(|c| c.is_control()) {
            return Err(format!("{k} holds a control character (a newline?)"));
        }
        let endpoint = k.ends_with("_ENDPOINT") || k.ends_with("_ENDPOINT_URL");
        if endpoint {
            let ok = url::Url::parse(v).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
            });
            if !ok || v.contains(char::is_whitespace) {
                return Err(format!(
                    "{k}={v:?} is not an endpoint URL (http://host:port or https://host)"
                ));
            }
            if v.to_ascii_lowercase().starts_with("http://") {
                http_endpoint = Some(format!("{k}={v}"));
            }
        }
        if (k == "AWS_REGION" || k == "AWS_DEFAULT_REGION")
            && (v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!(
                "{k}={v:?} is not a region name (such as us-east-1)"
            ));
        }
    }
    // Without this, the store's client refuses the endpoint with only "builder error".
    if let Some(e) = http_endpoint.filter(|_| !allow_http && prefix != "GOOGLE_") {
        return Err(format!(
            "{e} is plain HTTP, which the store refuses unless {prefix}ALLOW_HTTP=true is set (use https://, or set it for a local test server)"
        ));
    }
    Ok(())
}

/// The objects of one object store, named by URLs under its base (`s3://bucket`).
#[derive(Debug)]
pub struct ObjectStoreStore {
    store: Arc<dyn ObjectStore>,
    base: String,
    window: u64,
}

impl ObjectStoreStore {
    /// The objects of `store`, named by URLs under `base` (`scheme://bucket`).
    pub fn new(store: Arc<dyn ObjectStore>, base: &str) -> Self {
        ObjectStoreStore {
            store,
            base: base.trim_end_matches('/').to_string(),
            window: ObjectSource::WINDOW,
        }
    }

    /// Reads through windows of `window` bytes (default [`ObjectSource::WINDOW`]).
    pub fn with_window(mut self, window: u64) -> Self {
        self.window = window;
        self
    }

    /// The `object_store` handle.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The base URL (`scheme://bucket`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The key of a URL (or of a key given as is) in this store.
    pub fn key(&self, url: &str) -> Result<ObjectPath> {
        let raw = if is_url(url) {
            let (base, key) = split_url(url)?;
            if base != self.base {
                return Err(Error::store_config(
                    url,
                    format!("not in the store of {}", self.base),
                ));
            }
            key
        } else {
            url.trim_matches('/').to_string()
        };
        Ok(ObjectPath::parse(&raw).unwrap_or_else(|_| ObjectPath::from(raw.as_str())))
    }

    /// The URL of `key`.
    pub fn url(&self, key: &ObjectPath) -> String {
        format!("{}/{}", self.base, key)
    }

    fn io_error(&self, what: &str, key: &ObjectPath, e: object_store::Error) -> Error {
        let kind = match e {
            object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => std::io::ErrorKind::PermissionDenied,
            _ => std::io::ErrorKind::Other,
        };
        Error::io(
            format!("{what} {}", self.url(key)),
            std::io::Error::new(kind, e.to_string()),
        )
    }

    /// Every object below `prefix` (recursively), as (key, size).
    fn list(&self, prefix: &ObjectPath) -> Result<Vec<(ObjectPath, u64)>> {
        let store = Arc::clone(&self.store);
        let p = prefix.clone();
        let listed = wait(async move {
            let prefix = (!p.as_ref().is_empty()).then_some(&p);
            store.list(prefix).try_collect::<Vec<_>>().await
        })
        .map_err(|e| self.io_error("listing", prefix, e))?;
        Ok(listed.into_iter().map(|m| (m.location, m.size)).collect())
    }
}

/// Whether a listed key is a data file of a dataset below `prefix`: a `.parquet` object none
/// of whose parts below the prefix is hidden (`.name`) or a writer's scratch (`_temporary`,
/// `_SUCCESS`, as Spark and Hive leave them).
fn is_data_file(key: &ObjectPath, prefix: &ObjectPath) -> bool {
    let below: Vec<_> = key
        .prefix_match(prefix)
        .map(|p| p.collect())
        .unwrap_or_default();
    key.extension() == Some("parquet")
        && below
            .iter()
            .all(|p| !p.as_ref().starts_with('.') && !p.as_ref().starts_with('_'))
}

impl Store for ObjectStoreStore {
    fn expand(&self, pattern: &str) -> Result<Vec<PathBuf>> {
        let key = self.key(pattern)?;
        let raw = key.as_ref().to_string();
        let not_found = |why: &str| {
            Error::io(
                pattern,
                std::io::Error::new(std::io::ErrorKind::NotFound, why.to_string()),
            )
        };
        let mut found: Vec<String> = if raw.contains(['*', '?', '[']) {
            // List below the last '/' before the first glob character, then match.
            let fixed = &raw[..raw.find(['*', '?', '[']).unwrap_or(raw.len())];
            let prefix = ObjectPath::from(fixed.rsplit_once('/').map_or("", |(p, _)| p));
            let glob = glob::Pattern::new(&raw)
                .map_err(|e| Error::bad_argument("glob", format!("{pattern}: {e}")))?;
            let opts = glob::MatchOptions {
                require_literal_separator: true,
                ..Default::default()
            };
            let found: Vec<String> = self
                .list(&prefix)?
                .into_iter()
                .filter(|(k, _)| glob.matches_with(k.as_ref(), opts))
                .map(|(k, _)| self.url(&k))
                .collect();
            if found.is_empty() {
                return Err(not_found("the glob matches no object"));
            }
            found
        } else {
            let store = Arc::clone(&self.store);
            let k = key.clone();
            match wait(async move { store.head(&k).await }) {
                Ok(_) => vec![self.url(&key)],
                Err(object_store::Error::NotFound { .. }) => {
                    let found: Vec<String> = self
                        .list(&key)?
                        .into_iter()
                        .filter(|(k, _)| is_data_file(k, &key))
                        .map(|(k, _)| self.url(&k))
                        .collect();
                    if found.is_empty() {
                        return Err(not_found(
                            "no such object, and no .parquet objects below it",
                        ));
                    }
                    found
                }
                Err(e) => return Err(self.io_error("reading", &key, e)),
            }
        };
        found.sort();
        Ok(found.into_iter().map(PathBuf::from).collect())
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn ByteSource>> {
        let url = path.to_string_lossy();
        let key = self.key(&url)?;
        let store = Arc::clone(&self.store);
        let k = key.clone();
        let meta = wait(async move { store.head(&k).await })
            .map_err(|e| self.io_error("opening", &key, e))?;
        Ok(Arc::new(ObjectSource::with_window(
            Arc::clone(&self.store),
            key,
            meta.size,
            self.window,
        )))
    }
}

/// Bytes per part of an upload.
const PART: usize = 16 << 20;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

impl ObjectStoreStore {
    /// Whether an object exists at `url`.
    pub fn exists(&self, url: &str) -> Result<bool> {
        let key = self.key(url)?;
        let (store, k) = (Arc::clone(&self.store), key.clone());
        match wait(async move { store.head(&k).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.io_error("reading", &key, e)),
        }
    }

    /// Deletes the object at `url` (a missing object is not an error).
    pub fn delete(&self, url: &str) -> Result<()> {
        let key = self.key(url)?;
        let (store, k) = (Arc::clone(&self.store), key.clone());
        match wait(async move { store.delete(&k).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.io_error("deleting", &key, e)),
        }
    }

    /// The URLs of every object below `url` (a prefix), sorted.
    pub fn objects_below(&self, url: &str) -> Result<Vec<String>> {
        let key = self.key(url)?;
        let mut v: Vec<String> = self.list(&key)?.iter().map(|(k, _)| self.url(k)).collect();
        v.sort();
        Ok(v)
    }

    /// Uploads the local file `from` to `url`. The object appears only when complete: a
    /// single PUT for a small file, else a multipart upload of `PART`-byte parts (a few in
    /// flight, memory bounded by them) that is aborted if any part fails, and by a guard if
    /// anything else stops it (a panic). The error reported is the one that stopped the
    /// upload, never the abort's.
    pub fn upload(&self, from: &Path, url: &str) -> Result<()> {
        self.upload_cancellable(from, url, &AtomicBool::new(false))
    }

    /// [`ObjectStoreStore::upload`] that stops when `cancel` is set (checked before each
    /// part): the multipart upload is aborted and the result is [`Error::Cancelled`].
    pub fn upload_cancellable(&self, from: &Path, url: &str, cancel: &AtomicBool) -> Result<()> {
        use std::io::Read;
        let key = self.key(url)?;
        let failed = |e| self.io_error("uploading to", &key, e);
        let cancelled = || cancel.load(Ordering::Relaxed);
        let mut file = std::fs::File::open(from)
            .map_err(|e| Error::io(format!("opening {}", from.display()), e))?;
        let read_part = |file: &mut std::fs::File| -> Result<Vec<u8>> {
            let mut buf = Vec::with_capacity(PART);
            file.by_ref()
                .take(PART as u64)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(format!("reading {}", from.display()), e))?;
            Ok(buf)
        };
        let first = read_part(&mut file)?;
        if cancelled() {
            return Err(Error::Cancelled);
        }
        if first.len() < PART {
            let (store, k) = (Arc::clone(&self.store), key.clone());
            wait(async move { store.put(&k, first.into()).await }).map_err(failed)?;
            return Ok(());
        }
        let (store, k) = (Arc::clone(&self.store), key.clone());
        let mut upload = AbortOnDrop(Some(
            wait(async move { store.put_multipart(&k).await }).map_err(failed)?,
        ));
        let mut inflight: std::collections::VecDeque<mpsc::Receiver<object_store::Result<()>>> =
            std::collections::VecDeque::new();
        let mut part = first;
        let result = loop {
            if part.is_empty() {
                break inflight.drain(..).try_for_each(receive).map_err(failed);
            }
            if cancelled() {
                break Err(Error::Cancelled);
            }
            inflight.push_back(spawn(upload.parts().put_part(part.into())));
            if inflight.len() >= PARTS_IN_FLIGHT {
                if let Err(e) = receive(inflight.pop_front().expect("a part is in flight")) {
                    break Err(failed(e));
                }
            }
            part = match read_part(&mut file) {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
        };
        match result {
            Ok(()) => upload.complete().map_err(failed),
            Err(e) => {
                // The parts in flight end before the abort (the guard's drop), so none
                // lands after it.
                for rx in inflight {
                    let _ = receive(rx);
                }
                Err(e)
            }
        }
    }
}

/// A multipart upload, aborted when dropped unless completed: whatever stops an upload
/// between its parts (an error, a cancellation, a panic) leaves no upload behind. A failing
/// abort is ignored: the cause of the abort is the error that matters.
struct AbortOnDrop(Option<Box<dyn object_store::MultipartUpload>>);

impl AbortOnDrop {
    fn parts(&mut self) -> &mut Box<dyn object_store::MultipartUpload> {
        self.0.as_mut().expect("an upload not yet completed")
    }

    fn complete(mut self) -> object_store::Result<()> {
        let mut upload = self.0.take().expect("an upload not yet completed");
        wait(async move { upload.complete().await }).map(|_| ())
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(mut upload) = self.0.take() {
            if let Err(e) = wait(async move { upload.abort().await }) {
                tracing::warn!(error = %e, "aborting a multipart upload failed");
            }
        }
    }
}

/// One object, read with ranged GETs through a read-ahead window.
#[derive(Debug)]
pub struct ObjectSource {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    len: u64,
    window: u64,
    cache: Mutex<Window>,
}

/// The bytes fetched and being fetched.
#[derive(Debug, Default)]
struct Window {
    /// The last window fetched: its start and bytes.
    current: Option<(u64, Bytes)>,
    /// Whether the reader is streaming (its last miss continued the window before it): only
    /// then is a whole window fetched and the next one read ahead; a random read (a footer,
    /// a float row the rescoring tier wants) fetches little more than it asks for.
    streaming: bool,
    /// The next window, in flight: its range and where its bytes will arrive.
    ahead: Option<(Range<u64>, mpsc::Receiver<object_store::Result<Bytes>>)>,
}

impl ObjectSource {
    /// Bytes per ranged GET (and per read-ahead) while a reader streams.
    pub const WINDOW: u64 = 8 << 20;
    /// Bytes at least per ranged GET of a random read.
    const SMALL: u64 = 64 << 10;

    /// The object at `key` of `store`, `len` bytes long.
    pub fn new(store: Arc<dyn ObjectStore>, key: ObjectPath, len: u64) -> Self {
        Self::with_window(store, key, len, Self::WINDOW)
    }

    /// As [`ObjectSource::new`], with `window` bytes per GET.
    pub fn with_window(
        store: Arc<dyn ObjectStore>,
        key: ObjectPath,
        len: u64,
        window: u64,
    ) -> Self {
        ObjectSource {
            store,
            key,
            len,
            window: window.max(1),
            cache: Mutex::new(Window::default()),
        }
    }

    fn fetch(&self, range: Range<u64>) -> mpsc::Receiver<object_store::Result<Bytes>> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        spawn(async move { store.get_range(&key, range).await })
    }

    fn failed(&self, e: object_store::Error) -> std::io::Error {
        std::io::Error::other(format!("reading {}: {e}", self.key))
    }
}

impl ByteSource for ObjectSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let b = self.get(offset, buf.len())?;
        buf.copy_from_slice(&b);
        Ok(())
    }

    fn get(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: {len} bytes at {offset} run past its end ({} bytes)",
                        self.key, self.len
                    ),
                )
            })?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let covers = |start: u64, b: &Bytes| offset >= start && end <= start + b.len() as u64;
        let mut w = self.cache.lock().expect("read-ahead window poisoned");
        // The window in flight becomes the current one once the reader reaches it.
        if let Some((range, _)) = &w.ahead {
            if offset >= range.start && offset < range.end {
                let (range, rx) = w.ahead.take().expect("checked above");
                let bytes = receive(rx).map_err(|e| self.failed(e))?;
                w.current = Some((range.start, bytes));
            }
        }
        let hit = matches!(&w.current, Some((s, b)) if covers(*s, b));
        if !hit {
            // A read that starts inside (or just past) the last window continues a stream:
            // fetch a whole window from here. Anything else is a jump: fetch little more than
            // the read, and drop the read-ahead.
            w.streaming = matches!(&w.current, Some((s, b))
                if offset >= *s && offset <= *s + b.len() as u64 + Self::SMALL);
            if !w.streaming {
                w.ahead = None;
            }
            let want = if w.streaming {
                self.window
            } else {
                Self::SMALL
            };
            let stop = (offset + want.max(len as u64)).min(self.len);
            let bytes = receive(self.fetch(offset..stop)).map_err(|e| self.failed(e))?;
            w.current = Some((offset, bytes));
        }
        let (start, bytes) = w.current.as_ref().expect("a window was just fetched");
        let out = bytes.slice((offset - start) as usize..(end - start) as usize);
        let next = start + bytes.len() as u64;
        if w.streaming && w.ahead.is_none() && next < self.len {
            let range = next..(next + self.window).min(self.len);
            w.ahead = Some((range.clone(), self.fetch(range)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
