//! Tests of object-store reads and uploads, with an in-memory store and a counting double.
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStoreExt, PutPayload};

use super::*;

fn put(store: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) {
    let (s, k) = (Arc::clone(store), ObjectPath::from(key));
    wait(async move { s.put(&k, PutPayload::from(bytes)).await }).unwrap();
}

#[test]
fn urls_and_paths_are_told_apart() {
    assert!(is_url("s3://bucket/a.parquet"));
    assert!(is_url("abfss://container@account.dfs.core.windows.net/x"));
    assert!(!is_url("data/a.parquet"));
    assert!(!is_url("/tmp/a://b"));
    assert_eq!(
        split_url("S3://bucket/dir/part-*.parquet").unwrap(),
        ("s3://bucket".into(), "dir/part-*.parquet".into())
    );
    assert_err!(split_url("s3:///key"), crate::Error::BadArgument { .. });
    let e = store_for("ftp://host/x").unwrap_err().to_string();
    assert!(e.contains("ftp://host/x: unsupported URL scheme"), "{e}");
}

#[test]
fn every_read_returns_the_objects_bytes_whatever_the_window() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    put(&store, "x/blob", data.clone());
    for window in [1u64, 1000, 4096, 1 << 20] {
        let src = ObjectSource::with_window(
            Arc::clone(&store),
            ObjectPath::from("x/blob"),
            data.len() as u64,
            window,
        );
        // Sequential, backwards, overlapping and window-crossing reads.
        let reads = [
            (0, 10),
            (5, 3000),
            (2990, 20),
            (99_000, 1000),
            (50_000, 7),
            (0, 100_000),
            (4095, 2),
        ];
        for (o, n) in reads {
            let got = src.get(o, n).unwrap();
            assert_eq!(
                &got[..],
                &data[o as usize..o as usize + n],
                "window {window}: {n} at {o}"
            );
        }
        let mut buf = [0u8; 4];
        assert_eq!(
            src.read_exact_at(99_998, &mut buf).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::UnexpectedEof),
            "a read past the end is an error"
        );
    }
}

#[test]
fn expand_lists_files_prefixes_and_globs() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    for k in [
        "emb/date=1/part-0.parquet",
        "emb/date=1/part-1.parquet",
        "emb/date=2/part-0.parquet",
        "emb/_temporary/part-9.parquet",
        "emb/.hidden.parquet",
        "emb/_SUCCESS",
        "emb/notes.txt",
    ] {
        put(&store, k, vec![1, 2, 3]);
    }
    let s = ObjectStoreStore::new(store, "s3://bucket");
    let names = |p: &str| -> Vec<String> {
        s.expand(p)
            .unwrap()
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    };
    assert_eq!(
        names("s3://bucket/emb"),
        [
            "s3://bucket/emb/date=1/part-0.parquet",
            "s3://bucket/emb/date=1/part-1.parquet",
            "s3://bucket/emb/date=2/part-0.parquet"
        ]
    );
    assert_eq!(names("s3://bucket/emb/"), names("s3://bucket/emb"));
    assert_eq!(
        names("s3://bucket/emb/date=*/part-0.parquet"),
        [
            "s3://bucket/emb/date=1/part-0.parquet",
            "s3://bucket/emb/date=2/part-0.parquet"
        ]
    );
    assert_eq!(
        names("s3://bucket/emb/date=2/part-0.parquet"),
        ["s3://bucket/emb/date=2/part-0.parquet"]
    );
    for missing in ["s3://bucket/nothing", "s3://bucket/emb/*.csv"] {
        let e = s.expand(missing).unwrap_err().to_string();
        assert!(e.contains(missing), "{e}");
    }
    let e = s.expand("s3://other/emb").unwrap_err().to_string();
    assert!(e.contains("not in the store of s3://bucket"), "{e}");
    let e = s
        .open(Path::new("s3://bucket/emb/gone.parquet"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3://bucket/emb/gone.parquet"), "{e}");
}

/// InMemory, whose multipart uploads fail at part `fail_at` (when given) and count their
/// aborts and completions.
#[derive(Debug, Default)]
struct Counting {
    inner: InMemory,
    fail_at: Option<usize>,
    /// Set when part 2 is put (a Ctrl-C during the upload).
    cancel: Option<Arc<AtomicBool>>,
    aborts: Arc<std::sync::atomic::AtomicUsize>,
    completes: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn object_store::MultipartUpload>,
    part: usize,
    fail_at: Option<usize>,
    cancel: Option<Arc<AtomicBool>>,
    aborts: Arc<std::sync::atomic::AtomicUsize>,
    completes: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl object_store::MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        self.part += 1;
        if let Some(c) = self.cancel.as_ref().filter(|_| self.part == 2) {
            c.store(true, Ordering::SeqCst);
        }
        if Some(self.part) == self.fail_at {
            return Box::pin(async {
                Err(object_store::Error::Generic {
                    store: "test",
                    source: "part refused".into(),
                })
            });
        }
        self.inner.put_part(data)
    }
    async fn complete(&mut self) -> object_store::Result<object_store::PutResult> {
        self.completes.fetch_add(1, Ordering::SeqCst);
        self.inner.complete().await
    }
    async fn abort(&mut self) -> object_store::Result<()> {
        self.aborts.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        Ok(Box::new(CountingUpload {
            inner: self.inner.put_multipart_opts(location, opts).await?,
            part: 0,
            fail_at: self.fail_at,
            cancel: self.cancel.clone(),
            aborts: Arc::clone(&self.aborts),
            completes: Arc::clone(&self.completes),
        }))
    }
    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[test]
fn a_multipart_upload_appears_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("big.bin");
    // Three and a half parts.
    let data: Vec<u8> = (0..PART * 7 / 2).map(|i| (i % 253) as u8).collect();
    std::fs::write(&from, &data).unwrap();
    let url = "s3://bucket/out/big.bin";
    let run = |fail_at: Option<usize>, cancel: Option<bool>| {
        let flag = Arc::new(AtomicBool::new(cancel == Some(true)));
        let store = Arc::new(Counting {
            fail_at,
            cancel: (cancel == Some(false)).then(|| Arc::clone(&flag)),
            ..Default::default()
        });
        let s = ObjectStoreStore::new(store.clone(), "s3://bucket");
        let r = s.upload_cancellable(&from, url, &flag);
        let counts = (
            store.aborts.load(Ordering::SeqCst),
            store.completes.load(Ordering::SeqCst),
        );
        (r, s.exists(url).unwrap(), counts, s)
    };
    // Complete: the object holds the file's bytes.
    let (r, exists, counts, s) = run(None, None);
    r.unwrap();
    assert!(exists);
    assert_eq!(counts, (0, 1));
    let src = s.open(Path::new(url)).unwrap();
    assert_eq!(&src.get(0, data.len()).unwrap()[..], &data[..]);
    // A part fails: aborted once, no object, the part's error reported.
    let (r, exists, counts, _) = run(Some(2), None);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("part refused") && e.contains(url), "{e}");
    assert!(!exists);
    assert_eq!(counts, (1, 0));
    // Cancelled during the upload (after part 2): aborted, no object.
    let (r, exists, counts, _) = run(None, Some(false));
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!(!exists);
    assert_eq!(counts, (1, 0));
    // Cancelled before it began: nothing started.
    let (r, exists, counts, _) = run(None, Some(true));
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!(!exists);
    assert_eq!(counts, (0, 0));
}

#[test]
fn malformed_store_settings_are_errors_not_panics() {
    let vars = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<Vec<(std::ffi::OsString, std::ffi::OsString)>>()
            .into_iter()
    };
    let good = [
        ("AWS_ENDPOINT", "http://127.0.0.1:8333"),
        ("AWS_ALLOW_HTTP", "TRUE"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_SESSION_TOKEN", "abc/+="),
        ("HOME", "not checked\n"),
    ];
    check_settings("AWS_", vars(&good)).unwrap();
    for (k, v, needle) in [
        ("AWS_ENDPOINT", "not a url", "not an endpoint URL"),
        ("AWS_ENDPOINT", "http://[::1", "not an endpoint URL"),
        ("AWS_ENDPOINT", "http://host name:80", "not an endpoint URL"),
        ("AWS_ENDPOINT_URL", "ftp://host", "not an endpoint URL"),
        ("AWS_REGION", "no such region!", "not a region name"),
        ("AWS_SESSION_TOKEN", "abc\ndef", "control character"),
        ("GOOGLE_SERVICE_ACCOUNT", "x\ty", "control character"),
    ] {
        let prefix = if k.starts_with("AWS_") {
            "AWS_"
        } else {
            "GOOGLE_"
        };
        let e = check_settings(prefix, vars(&[(k, v)])).unwrap_err();
        assert!(e.contains(k) && e.contains(needle), "{k}={v:?}: {e}");
    }
    // A plain-HTTP endpoint without ALLOW_HTTP says so (the store would only say
    // "builder error"); https needs nothing.
    let e = check_settings("AWS_", vars(&[("AWS_ENDPOINT", "http://127.0.0.1:8333")])).unwrap_err();
    assert!(e.contains("AWS_ALLOW_HTTP=true"), "{e}");
    let e = check_settings(
        "AWS_",
        vars(&[
            ("AWS_ENDPOINT", "http://127.0.0.1:8333"),
            ("AWS_ALLOW_HTTP", "false"),
        ]),
    )
    .unwrap_err();
    assert!(e.contains("AWS_ALLOW_HTTP=true"), "{e}");
    check_settings("AWS_", vars(&[("AWS_ENDPOINT", "https://s3.example.com")])).unwrap();
    // Another store's variables are not this one's business.
    check_settings("AZURE_", vars(&[("AWS_REGION", "no such region!")])).unwrap();
}

#[test]
fn object_urls_are_normalized_and_dot_segments_refused() {
    assert_eq!(
        split_url("s3a://bucket//dir/%70art.parquet").unwrap(),
        ("s3a://bucket".into(), "dir/part.parquet".into())
    );
    for bad in ["s3://b/../x", "s3://b/./x", "s3://b/x?versionId=1"] {
        assert_err!(split_url(bad), crate::Error::BadArgument { .. }, "{bad}");
    }
}
