//! Object-store failures against a real S3 server (SeaweedFS, see `s3_server`): many small
//! files, a truncated file, a wrong secret, a missing bucket, an unknown scheme, an upload
//! cancelled or cut off by the server's death.

mod common;
mod s3_server;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::text;
use s3_server::{ok, run, run_env, start_server, Server, BUCKET};

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
    let wrong = [("AWS_SECRET_ACCESS_KEY", "not-the-secret")];
    let out = run_env(&["inspect", &url("emb/part-0.parquet")], p, &server, &wrong);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&url("emb/part-0.parquet")), "{err}");

    // A missing bucket. (As an output it is not an error on SeaweedFS, which creates the
    // bucket on the first PUT; a refused output is tested with a wrong secret.)
    let err = fails(&["inspect", "s3://no-such-bucket/x.parquet"], &server);
    assert!(err.contains("s3://no-such-bucket/x.parquet"), "{err}");
    let out = run_env(
        &[
            "quantize",
            corpus.to_str().unwrap(),
            "--column",
            "embedding",
            "--scheme",
            "int8",
            "-o",
            &url("out/denied.parquet"),
            "--quiet",
        ],
        p,
        &server,
        &wrong,
    );
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

/// Every object below the bucket, with its bytes.
fn bucket_snapshot(server: &Server) -> Vec<(String, Vec<u8>)> {
    let store = server.store();
    let mut all: Vec<(String, Vec<u8>)> = store
        .objects_below(&format!("s3://{BUCKET}"))
        .unwrap()
        .into_iter()
        .map(|o| {
            let src = embquant::io::Store::open(&store, Path::new(&o)).unwrap();
            let mut buf = vec![0u8; src.len() as usize];
            src.read_exact_at(0, &mut buf).unwrap();
            (o, buf)
        })
        .collect();
    all.sort();
    all
}

/// The hostile round's object-store spellings: an input named `s3://`, the output `s3a://`,
/// `S3://`, with `//` or under a prefix the input lies in, never replaced (quantize,
/// calibrate, search, SQL COPY, EXPLAIN ANALYZE COPY); dot segments and query strings
/// refused; `sql -o s3://...` stores the object under its own name.
#[test]
fn s3_inputs_in_other_spellings_are_never_replaced() {
    let Some(server) = start_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let store = server.store();
    let url = |key: &str| format!("s3://{BUCKET}/{key}");
    store
        .upload(
            &data.join("minilm-wordnet-5k.parquet"),
            &url("emb/x.parquet"),
        )
        .unwrap();
    store
        .upload(
            &data.join("minilm-wordnet-queries-50.parquet"),
            &url("q/q.parquet"),
        )
        .unwrap();
    ok(
        &[
            "calibrate",
            &url("emb/x.parquet"),
            "-o",
            &url("cal/cal.json"),
        ],
        p,
        &server,
    );
    ok(
        &[
            "quantize",
            &url("emb/x.parquet"),
            "-o",
            &url("corp/c.parquet"),
        ],
        p,
        &server,
    );
    let before = bucket_snapshot(&server);
    let b = BUCKET;
    let cases: Vec<Vec<String>> = vec![
        vec![
            "quantize".into(),
            url("emb/x.parquet"),
            "-o".into(),
            format!("s3a://{b}/emb/x.parquet"),
        ],
        vec![
            "quantize".into(),
            url("emb/x.parquet"),
            "-o".into(),
            format!("S3://{b}/emb/x.parquet"),
        ],
        vec![
            "quantize".into(),
            url("emb/x.parquet"),
            "-o".into(),
            format!("s3://{b}/emb//x.parquet"),
        ],
        vec![
            "quantize".into(),
            url("emb"),
            "-o".into(),
            format!("s3a://{b}/emb/y.parquet"),
        ],
        vec![
            "calibrate".into(),
            url("emb/x.parquet"),
            "-o".into(),
            format!("s3a://{b}/emb/x.parquet"),
        ],
        vec![
            "quantize".into(),
            url("emb/x.parquet"),
            "--calibration".into(),
            format!("s3a://{b}/cal/cal.json"),
            "-o".into(),
            url("cal/cal.json"),
        ],
        vec![
            "search".into(),
            "--corpus".into(),
            url("corp/c.parquet"),
            "--queries".into(),
            format!("s3a://{b}/q/q.parquet"),
            "-o".into(),
            url("q/q.parquet"),
        ],
        vec![
            "search".into(),
            "--corpus".into(),
            url("corp/c.parquet"),
            "--queries".into(),
            format!("s3://{b}/q/*.parquet"),
            "-o".into(),
            format!("s3a://{b}/q/q.parquet"),
        ],
        vec![
            "sql".into(),
            "-t".into(),
            format!("c={}", url("corp/c.parquet")),
            format!("COPY (SELECT id FROM c) TO 's3a://{b}/corp/c.parquet'"),
        ],
        vec![
            "sql".into(),
            "-t".into(),
            format!("c={}", url("corp/c.parquet")),
            format!(
                "EXPLAIN ANALYZE COPY (SELECT id FROM c) TO '{}'",
                url("corp/c.parquet")
            ),
        ],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, p, &server);
        assert!(!out.status.success(), "{args:?} succeeded");
        let e = text(&out.stderr);
        assert!(e.contains("would replace the input"), "{args:?}: {e}");
        assert!(
            bucket_snapshot(&server) == before,
            "{args:?} changed the bucket"
        );
    }
    // Keys are names: dot segments and query strings are refused, not kept literally.
    for out_url in [
        url("emb/../y.parquet"),
        url("./y.parquet"),
        url("y.parquet?x=1"),
    ] {
        let out = run(
            &["calibrate", &url("emb/x.parquet"), "-o", &out_url],
            p,
            &server,
        );
        assert!(!out.status.success(), "{out_url} accepted");
        assert!(
            bucket_snapshot(&server) == before,
            "{out_url} changed the bucket"
        );
    }
    // `sql -o s3://...`: the result appears under its own name, nothing else.
    ok(
        &["sql", "SELECT 1 AS x", "-o", &url("res/res.parquet")],
        p,
        &server,
    );
    assert_eq!(
        store.objects_below(&url("res")).unwrap(),
        vec![url("res/res.parquet")]
    );
}
