//! `s3://` inputs and outputs against a real S3 server (SeaweedFS, see `s3_server`): every
//! command, SQL and the recall report give the same results as on local files.

mod common;
mod s3_server;

use std::path::Path;

use common::text;
use embquant::io::Store;
use s3_server::{ok, run, start_server, BUCKET};

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
        text(&over.stderr).contains("would replace the input"),
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
