//! The distributed job on an in-process cluster (a scheduler and two executors on
//! 127.0.0.1, Ballista's standalone helpers): its outputs decode to exactly the local ones.

mod common;

use common::*;
use embquant::job::QuantizeSpec;
use embquant_ballista::server::LocalCluster;
use embquant_ballista::{pipeline, session};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calibration_on_the_cluster_is_the_local_one() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(dir.path(), 4);
    let cluster = LocalCluster::start(2, 1).await.unwrap();
    let ctx = session::connect(&cluster.url()).await.unwrap();
    let files = embquant::job::discover(&shards).unwrap();
    for method in ["minmax", "quantile:0.999", "meanstd:3"] {
        let remote = pipeline::calibrate(&ctx, &files, "embedding", method)
            .await
            .unwrap();
        let local = local_aggregate(&shards, method).await;
        assert_eq!(remote.rows(), 5000, "{method}");
        assert_eq!(remote.fingerprint(), local.fingerprint(), "{method}");
        assert_eq!(
            remote.to_json().unwrap(),
            local.to_json().unwrap(),
            "{method}"
        );
        assert_eq!(
            remote.degenerate_dims().len(),
            3,
            "MiniLM's three dead dimensions"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quantized_parts_are_the_local_job_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(&dir.path().join("in"), 5);
    let cluster = LocalCluster::start(2, 2).await.unwrap();
    let ctx = session::connect(&cluster.url()).await.unwrap();
    let files = embquant::job::discover(&shards).unwrap();
    let cal = pipeline::calibrate(&ctx, &files, "embedding", "minmax")
        .await
        .unwrap();
    // `rabitq4` on the cluster as in the local command: the 1-bit and the extra-bit columns.
    let mut spec = QuantizeSpec::new("embedding");
    spec.schemes = vec!["int8".into(), "binary".into(), "rabitq4".into()];
    spec.row_group_rows = 700;
    let out = dir.path().join("out");
    let summary = pipeline::quantize(&ctx, &files, out.to_str().unwrap(), &spec, &cal)
        .await
        .unwrap();
    assert_eq!(summary.rows(), 5000);
    assert_eq!(summary.shards.len(), 5);
    // The output: the parts and the manifest, nothing else (no staging left beside it).
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..5).map(pipeline::part_name).collect();
    want.push(embquant::io::MANIFEST_NAME.into());
    want.sort();
    assert_eq!(names, want);
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(
        beside.len(),
        2,
        "only in/ and out/ in {}",
        dir.path().display()
    );

    // Each part is what the local job writes for its shard with the same calibration.
    let local = dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let mut local_files = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let l = local.join(format!("{i}.parquet"));
        quantize_locally(shard, &l, &spec, &cal).await;
        assert_same_output(&out.join(pipeline::part_name(i)), &l);
        local_files.push(l.to_string_lossy().into_owned());
        let (batches, meta) = read_parquet(&out.join(pipeline::part_name(i)));
        assert_eq!(meta.calibration.fingerprint(), cal.fingerprint());
        let schema = batches[0].schema();
        assert!(
            schema.field_with_name("embedding_rq4").is_ok(),
            "{schema:?}"
        );
    }
    // The same search results, through every tier.
    let got = embquant::job::discover(&[out.to_string_lossy().into_owned()]).unwrap();
    let want = embquant::job::discover(&local_files).unwrap();
    for tiers in [
        "binary:4,int8",
        "rabitq:4,int8",
        "rabitq1:bound,rabitq4:bound,int8",
    ] {
        assert_eq!(search(&got, tiers), search(&want, tiers), "{tiers}");
    }
}

/// A spec with a Matryoshka prefix calibrates on the cluster the prefix the local job
/// calibrates (re-normalized), and a sample is refused there with what to do instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spec_with_a_prefix_calibrates_on_the_cluster_as_locally() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(dir.path(), 3);
    let cluster = LocalCluster::start(2, 1).await.unwrap();
    let ctx = session::connect(&cluster.url()).await.unwrap();
    let files = embquant::job::discover(&shards).unwrap();
    let mut spec = QuantizeSpec::new("embedding");
    spec.dims = Some(128);
    spec.method = "meanstd:3".into();
    let remote = pipeline::calibrate_spec(&ctx, &files, &spec).await.unwrap();
    let local = embquant::job::calibrate(
        &files,
        &spec.calibrate_options().unwrap(),
        std::sync::Arc::new(embquant::job::NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(remote.dim(), 128);
    assert_eq!(remote.rows(), local.rows());
    let (rj, lj) = (remote.to_json().unwrap(), local.to_json().unwrap());
    let d = rj
        .lines()
        .zip(lj.lines())
        .filter(|(a, b)| a != b)
        .take(6)
        .collect::<Vec<_>>();
    assert_eq!(remote.fingerprint(), local.fingerprint(), "{d:#?}");
    spec.sample_rows = Some(100);
    let e = pipeline::calibrate_spec(&ctx, &files, &spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--sample-rows"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_on_the_cluster_keeps_the_calibration_metadata() {
    // A COPY planned by the client, serialized to the scheduler and run by an executor: the
    // code column's field metadata (recipe, calibration) reaches the file.
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(&dir.path().join("in"), 2);
    let cluster = LocalCluster::start(2, 1).await.unwrap();
    let ctx = session::connect(&cluster.url()).await.unwrap();
    let files = embquant::job::discover(&shards).unwrap();
    let cal = pipeline::calibrate(&ctx, &files, "embedding", "minmax")
        .await
        .unwrap();
    pipeline::register_files(&ctx, "corpus", &files)
        .await
        .unwrap();
    let out = dir.path().join("copy.parquet");
    let sql = format!(
        "COPY (SELECT id, int8_quantize(embedding, {}) AS embedding_int8 FROM corpus) TO '{}' STORED AS PARQUET",
        pipeline::literal(&cal.to_json().unwrap()),
        out.display()
    );
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let b = embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&out).unwrap(),
    )
    .unwrap();
    let field = b
        .schema()
        .field_with_name("embedding_int8")
        .unwrap()
        .clone();
    let stored = field
        .metadata()
        .get(embquant::metadata::CALIBRATION_KEY)
        .expect("the calibration in the field metadata");
    assert_eq!(
        embquant::Calibration::from_json(stored)
            .unwrap()
            .fingerprint(),
        cal.fingerprint()
    );
    assert!(field.metadata().contains_key(embquant::METADATA_KEY));
    let rows: usize = b.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 5000);

    // The calibration read back from that metadata by a function on the executors.
    let t = embquant_udfs::register_parquet(&ctx, "coded", out.to_str().unwrap()).await;
    t.unwrap();
    let r = ctx
        .sql("SELECT count(*) FROM coded WHERE int8_dequantize(embedding_int8) IS NOT NULL")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = r[0]
        .column(0)
        .as_any()
        .downcast_ref::<embquant::arrow_array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_function_unknown_to_an_executor_is_named_in_the_error() {
    // The scheduler knows embquant's functions; the executor is stock Ballista's.
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(dir.path(), 1);
    let state = session::state(session::config()).unwrap();
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_from_state(&state)
        .await
        .unwrap();
    let client = loop {
        match ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient::connect(
            format!("http://{addr}"),
        )
        .await
        {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    ballista_executor::new_standalone_executor(client, 1, Default::default())
        .await
        .unwrap();
    let ctx = session::connect(&format!("df://{addr}")).await.unwrap();
    let files = embquant::job::discover(&shards).unwrap();
    pipeline::register_files(&ctx, "corpus", &files)
        .await
        .unwrap();
    let err = ctx
        .sql("SELECT binary_quantize(embedding) FROM corpus")
        .await
        .unwrap()
        .collect()
        .await
        .expect_err("a stock executor cannot run binary_quantize");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("binary_quantize"), "{msg}");
    let hint = session::hint(&msg).expect("a hint for this error");
    assert!(
        hint.contains("does not know the function binary_quantize"),
        "{hint}"
    );
}
