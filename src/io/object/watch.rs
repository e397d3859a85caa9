//! Slow requests made visible: [`Watched`] wraps a store so that a request without an
//! answer for [`NOTICE_EVERY`] is reported, every [`NOTICE_EVERY`] until it ends, to the
//! observer the embedder installed with [`on_slow_request`] (the CLI prints a line) and to
//! the log. Every store [`store_for`](super::store_for) makes is watched, so the commands,
//! SQL through DataFusion and the cluster all report the same way.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

/// How long a request waits before it is reported, and how often after that.
pub const NOTICE_EVERY: Duration = Duration::from_secs(5);

/// A request that has had no answer for a while.
#[derive(Debug, Clone)]
pub struct SlowRequest {
    /// The object (or prefix) asked for, as a URL.
    pub url: String,
    /// What was asked: `get`, `put`, `list`, ...
    pub operation: &'static str,
    /// How long the request has waited so far.
    pub waited: Duration,
    /// When it gives up ([`io_timeout`](super::io_timeout), `EMBQUANT_IO_TIMEOUT`).
    pub timeout: Duration,
}

impl fmt::Display for SlowRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waiting for {} ({}): no answer for {} s; gives up after about {} s without one \
             (EMBQUANT_IO_TIMEOUT)",
            self.url,
            self.operation,
            self.waited.as_secs(),
            self.timeout.as_secs()
        )
    }
}

type Observer = Box<dyn Fn(&SlowRequest) + Send + Sync>;

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Installs the function told about slow requests (once per process; `false` if one was
/// already installed). It runs on the I/O runtime: it should only print or record.
pub fn on_slow_request(f: impl Fn(&SlowRequest) + Send + Sync + 'static) -> bool {
    OBSERVER.set(Box::new(f)).is_ok()
}

fn report(r: &SlowRequest) {
    tracing::info!("{r}");
    if let Some(f) = OBSERVER.get() {
        f(r);
    }
}

/// Reports its request while alive; dropped when the request ends.
struct Watch(tokio::task::JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An object store whose requests are watched.
#[derive(Debug)]
pub struct Watched {
    inner: Arc<dyn ObjectStore>,
    base: String,
    timeout: Duration,
}

impl Watched {
    /// `inner`, serving URLs under `base`, requests reported after [`NOTICE_EVERY`].
    pub fn new(inner: Arc<dyn ObjectStore>, base: &str, timeout: Duration) -> Self {
        Watched {
            inner,
            base: base.trim_end_matches('/').to_string(),
            timeout,
        }
    }

    fn watch(&self, operation: &'static str, key: Option<&ObjectPath>) -> Watch {
        let url = match key {
            Some(k) => format!("{}/{k}", self.base),
            None => self.base.clone(),
        };
        watch(url, operation, self.timeout)
    }
}

/// Starts reporting a request on the I/O runtime (it has a timer whatever runtime the
/// caller's future runs on).
fn watch(url: String, operation: &'static str, timeout: Duration) -> Watch {
    let start = Instant::now();
    Watch(super::RUNTIME.spawn(async move {
        loop {
            tokio::time::sleep(NOTICE_EVERY).await;
            report(&SlowRequest {
                url: url.clone(),
                operation,
                waited: start.elapsed(),
                timeout,
            });
        }
    }))
}

impl fmt::Display for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Watched({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Watched {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let _w = self.watch("put", Some(location));
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let upload = {
            let _w = self.watch("upload", Some(location));
            self.inner.put_multipart_opts(location, opts).await?
        };
        Ok(Box::new(WatchedUpload {
            inner: upload,
            url: format!("{}/{location}", self.base),
            timeout: self.timeout,
        }))
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { "head" } else { "get" };
        let _w = self.watch(op, Some(location));
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let _w = self.watch("get", Some(location));
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // Watched until the first answer (an object, an error or the end of the listing).
        let mut w = Some(self.watch("list", prefix));
        let inner = self.inner.list(prefix);
        inner
            .inspect(move |_| {
                w.take();
            })
            .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        let _w = self.watch("list", prefix);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let _w = self.watch("copy", Some(to));
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        let _w = self.watch("rename", Some(to));
        self.inner.rename_opts(from, to, options).await
    }
}

/// A multipart upload whose parts, completion and abort are watched.
#[derive(Debug)]
struct WatchedUpload {
    inner: Box<dyn MultipartUpload>,
    url: String,
    timeout: Duration,
}

#[async_trait]
impl MultipartUpload for WatchedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let w = watch(self.url.clone(), "upload part", self.timeout);
        let part = self.inner.put_part(data);
        Box::pin(async move {
            let _w = w;
            part.await
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let _w = watch(self.url.clone(), "complete upload", self.timeout);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let _w = watch(self.url.clone(), "abort upload", self.timeout);
        self.inner.abort().await
    }
}
