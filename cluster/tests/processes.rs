//! The real binary as separate processes on 127.0.0.1: a scheduler and two executors, the
//! whole pipeline end to end, an executor killed mid-job, and the pipeline on the local S3
//! server (SeaweedFS, shared with the CLI's S3 tests).

mod common;
#[path = "../../cli/tests/s3_server/mod.rs"]
mod s3_server;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use embquant::job::QuantizeSpec;
use embquant_ballista::pipeline;

/// A child process killed (SIGKILL) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{what} on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scheduler and executors of the real binary.
struct Cluster {
    port: u16,
    executors: Vec<Proc>,
    _scheduler: Proc,
    env: Vec<(&'static str, String)>,
}

impl Cluster {
    fn start(executors: usize, env: Vec<(&'static str, String)>) -> Self {
        let port = free_port();
        let spawn = |args: &[String]| {
            Proc(
                Command::new(BIN)
                    .args(args)
                    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start embquant-cluster"),
            )
        };
        let scheduler = spawn(&[
            "scheduler".into(),
            "--bind".into(),
            format!("127.0.0.1:{port}"),
            "--executor-timeout-seconds".into(),
            "5".into(),
        ]);
        wait_for_port(port, "the scheduler");
        let executors: Vec<Proc> = (0..executors)
            .map(|_| {
                let p = free_port();
                let e = spawn(&[
                    "executor".into(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{port}"),
                    "--bind".into(),
                    format!("127.0.0.1:{p}"),
                    "--vcores".into(),
                    "1".into(),
                    "--heartbeat-seconds".into(),
                    "1".into(),
                ]);
                wait_for_port(p, "an executor");
                e
            })
            .collect();
        // Registration follows the first poll, right after the Flight server starts.
        std::thread::sleep(Duration::from_millis(500));
        Cluster {
            port,
            executors,
            _scheduler: scheduler,
            env,
        }
    }

    fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run embquant-cluster")
    }
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_on_separate_processes_equals_the_local_job() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(&dir.path().join("in"), 8);
    let cluster = Cluster::start(2, vec![]);
    let url = cluster.url();
    let out = dir.path().join("out");
    let cal_path = dir.path().join("cal.json");

    let mut args = vec![
        "calibrate",
        "--cluster",
        &url,
        "-o",
        cal_path.to_str().unwrap(),
    ];
    args.extend(shards.iter().map(String::as_str));
    let stdout = assert_ok(&cluster.run(&args), "calibrate");
    assert!(
        stdout.contains("calibrated 5000 rows x 384 dims"),
        "{stdout}"
    );
    let cal =
        embquant::Calibration::from_json(&std::fs::read_to_string(&cal_path).unwrap()).unwrap();
    assert_eq!(
        cal.fingerprint(),
        local_aggregate(&shards, "minmax").await.fingerprint()
    );

    let mut args = vec!["quantize", "--cluster", &url, "-o", out.to_str().unwrap()];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--scheme", "int8,binary,f16"]);
    let stdout = assert_ok(&cluster.run(&args), "quantize");
    assert!(
        stdout.contains("quantized 5000 rows from 8 file(s) into 8 part(s)"),
        "{stdout}"
    );
    // `calibrate` keeps the medians (as the local `embquant calibrate` does); `quantize`
    // calibrates as the local `quantize` does, without them unless its spec needs them.
    let cal = cal.without_medians();
    assert!(stdout.contains(&cal.fingerprint().to_string()), "{stdout}");
    // Both executors ran shards (each task slot takes one at a time).
    assert!(stdout.contains("on 2 worker(s)"), "{stdout}");

    let mut spec = QuantizeSpec::new("embedding");
    spec.schemes = vec!["int8".into(), "binary".into(), "f16".into()];
    let local = dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    for (i, shard) in shards.iter().enumerate() {
        let l = local.join(format!("{i}.parquet"));
        quantize_locally(shard, &l, &spec, &cal).await;
        assert_same_output(&out.join(pipeline::part_name(i)), &l);
    }

    // SQL on the cluster over the output directory: the manifest's parts, decoded with the
    // calibration in the field metadata.
    let table = format!("q={}", out.display());
    let stdout = assert_ok(
        &cluster.run(&[
            "sql",
            "--cluster",
            &url,
            "-t",
            &table,
            "SELECT count(*) AS n, sum(CASE WHEN int8_dequantize(embedding_int8) IS NULL THEN 1 ELSE 0 END) AS nulls FROM q",
        ]),
        "sql",
    );
    assert!(stdout.contains("| 5000 | 0     |"), "{stdout}");

    // A function the cluster does not know is named in the error.
    let out = cluster.run(&[
        "sql",
        "--cluster",
        &url,
        "SELECT no_such_quantize([1.0, 2.0])",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no_such_quantize"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_mid_job_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    // Twelve shards of 20,000 rows: long enough to kill an executor while tasks run.
    let shards = write_shards_repeated(&dir.path().join("in"), 12, 48);
    let mut cluster = Cluster::start(2, vec![]);
    let url = cluster.url();
    let out = dir.path().join("out");
    let mut args = vec!["quantize", "--cluster", &url, "-o", out.to_str().unwrap()];
    args.extend(shards.iter().map(String::as_str));
    let mut client = cluster.command(&args);
    client.stdout(Stdio::piped()).stderr(Stdio::piped());
    let client = client.spawn().unwrap();
    // Kill one executor as soon as a part is being written (its temporary file, or the part,
    // is in the staging directory; the shard list is there from the start).
    let t = Instant::now();
    let staging_has_parts = || {
        std::fs::read_dir(dir.path()).unwrap().any(|e| {
            let p = e.unwrap().path();
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".embquant-tmp-")
                && std::fs::read_dir(&p).is_ok_and(|mut d| {
                    d.any(|e| e.unwrap().file_name().to_string_lossy().contains("part-"))
                })
        })
    };
    while !staging_has_parts() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(staging_has_parts(), "no shard started within 60 s");
    cluster.executors.remove(0);

    let waited = Instant::now();
    let mut client = Proc(client);
    let status = loop {
        if let Some(s) = client.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(240),
            "the job neither finished nor failed within 240 s of the kill"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(client.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    if status.success() {
        // A completed retry: the whole output, every part decodable.
        let files = embquant::job::discover(&[out.to_string_lossy().into_owned()]).unwrap();
        assert_eq!(files.len(), 12);
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 12 * 20_000);
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.len(),
            13,
            "the parts and the manifest only: {names:?}"
        );
        eprintln!("the job completed after the kill (Ballista retried the tasks)");
    } else {
        // A clear failure, and nothing at the target.
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!out.exists(), "a failed job left {}", out.display());
        eprintln!("the job failed after the kill: {stderr}");
    }
    // No staging directory is left beside the target either way.
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".embquant-tmp-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_against_s3() {
    let Some(server) = s3_server::start_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(&dir.path().join("in"), 4);
    let store = server.store();
    for (i, s) in shards.iter().enumerate() {
        store
            .upload(
                Path::new(s),
                &format!("s3://{}/in/shard-{i}.parquet", s3_server::BUCKET),
            )
            .unwrap();
    }
    let cluster = Cluster::start(2, s3_server::env(&server));
    let url = cluster.url();
    let input = format!("s3://{}/in/", s3_server::BUCKET);
    let output = format!("s3://{}/out", s3_server::BUCKET);
    let stdout = assert_ok(
        &cluster.run(&["quantize", "--cluster", &url, &input, "-o", &output]),
        "quantize on S3",
    );
    assert!(
        stdout.contains("quantized 5000 rows from 4 file(s) into 4 part(s)"),
        "{stdout}"
    );

    // The manifest and the parts, each what the local job writes for the same shard (its
    // lineage names the S3 object instead of the local file).
    let cal = local_aggregate(&shards, "minmax").await.without_medians();
    let spec = QuantizeSpec::new("embedding");
    let mut objects = store.objects_below(&output).unwrap();
    objects.sort();
    assert_eq!(objects.len(), 5, "{objects:?}");
    assert!(objects[0].ends_with(embquant::io::MANIFEST_NAME));
    for (i, shard) in shards.iter().enumerate() {
        let got = dir.path().join(format!("got-{i}.parquet"));
        // The test process has no S3 variables: fetch through the harness's store.
        let bytes = store_get(&store, &format!("{output}/{}", pipeline::part_name(i)));
        std::fs::write(&got, bytes).unwrap();
        let want = dir.path().join(format!("want-{i}.parquet"));
        quantize_locally(shard, &want, &spec, &cal).await;
        let (gb, gm) = read_parquet(&got);
        let (wb, wm) = read_parquet(&want);
        assert_eq!(gb, wb, "part {i}");
        assert_eq!(gm.calibration, wm.calibration);
        assert_eq!(gm.columns, wm.columns);
        assert_eq!(gm.rows, wm.rows);
        assert_eq!(
            gm.lineage.inputs[0].path,
            format!("{input}shard-{i}.parquet")
        );
    }

    // A second run into the same prefix is refused and deletes nothing.
    let out = cluster.run(&["quantize", "--cluster", &url, &input, "-o", &output]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already holds objects"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(store.objects_below(&output).unwrap().len(), 5);
}

fn store_get(store: &embquant::io::object::ObjectStoreStore, url: &str) -> Vec<u8> {
    use embquant::io::Store;
    let key = std::path::PathBuf::from(url);
    let src = store.open(&key).unwrap();
    let mut buf = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut buf).unwrap();
    buf
}
