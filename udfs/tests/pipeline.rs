//! The SQL layer against the library, on the bundled sample (5,000 x 384 MiniLM vectors):
//! the calibration aggregate, the quantize functions and `tiered_search` give what
//! `embquant`'s own `Stats`/`Calibration`, codecs and `load_corpus` + `Corpus::search` give.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::{Float32Type, Int64Type, UInt32Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use embquant::search::{load_corpus, TierSpec};
use embquant::{BinaryCodec, Calibration, Int8Codec, RangeMethod, Stats, StatsOptions, Vectors};

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(file)
}

/// One column of a whole Parquet file, read with the library's Parquet crate.
fn read_column(path: &Path, column: &str) -> ArrayRef {
    let f = std::fs::File::open(path).expect("open test data");
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let cols: Vec<&dyn Array> = batches
        .iter()
        .map(|b| b.column_by_name(column).expect("column").as_ref())
        .collect();
    concat(&cols).expect("concat")
}

async fn session() -> SessionContext {
    let ctx = SessionContext::new_with_config(embquant_udfs::session_config());
    embquant_udfs::register_all(&ctx);
    ctx.register_parquet(
        "corpus",
        data("minilm-wordnet-5k.parquet").to_str().expect("utf-8"),
        ParquetReadOptions::default(),
    )
    .await
    .expect("register corpus");
    ctx.register_parquet(
        "queries",
        data("minilm-wordnet-queries-50.parquet")
            .to_str()
            .expect("utf-8"),
        ParquetReadOptions::default(),
    )
    .await
    .expect("register queries");
    ctx
}

async fn collect(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn column(ctx: &SessionContext, sql: &str) -> ArrayRef {
    let b = collect(ctx, sql).await;
    let cols: Vec<&dyn Array> = b.iter().map(|b| b.column(0).as_ref()).collect();
    concat(&cols).expect("concat")
}

async fn sql_calibration(ctx: &SessionContext, method: &str) -> Calibration {
    let c = column(
        ctx,
        &format!("SELECT embedding_calibration(embedding, '{method}') FROM corpus"),
    )
    .await;
    Calibration::from_json(c.as_string::<i32>().value(0)).expect("calibration JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_aggregate_equals_library() {
    let ctx = session().await;
    let vectors = read_column(&data("minilm-wordnet-5k.parquet"), "embedding");
    let stats = Stats::compute(vectors.as_ref(), &StatsOptions::default()).expect("stats");
    for method in ["minmax", "quantile:0.99", "meanstd:3"] {
        let sql = sql_calibration(&ctx, method).await;
        let lib = Calibration::from_stats(&stats, method.parse::<RangeMethod>().expect("method"))
            .expect("library calibration");
        assert_eq!(sql.rows(), 5000);
        assert_eq!(sql.dim(), 384);
        assert_eq!(sql.min(), lib.min(), "{method}: min");
        assert_eq!(sql.max(), lib.max(), "{method}: max");
        for (a, b) in sql.mean().iter().zip(lib.mean()) {
            assert!((a - b).abs() <= 1e-6, "{method}: mean {a} vs {b}");
        }
        for (a, b) in sql.std().iter().zip(lib.std()) {
            assert!((a - b).abs() <= 1e-6, "{method}: std {a} vs {b}");
        }
        for (a, b) in sql.lo().iter().zip(lib.lo()) {
            assert!((a - b).abs() <= 1e-6, "{method}: lo {a} vs {b}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantize_functions_equal_library_codecs() {
    let ctx = session().await;
    let cal = sql_calibration(&ctx, "minmax").await;
    let json = cal.to_json().expect("json");
    let vectors = read_column(&data("minilm-wordnet-5k.parquet"), "embedding");

    let sql_bin = column(
        &ctx,
        "SELECT binary_quantize(embedding) FROM corpus ORDER BY id",
    )
    .await;
    let lib_bin = BinaryCodec::new(384)
        .encode(vectors.as_ref())
        .expect("encode");
    assert_eq!(sql_bin.to_data(), lib_bin.array.to_data());

    let sql_i8 = column(
        &ctx,
        &format!("SELECT int8_quantize(embedding, '{json}') FROM corpus ORDER BY id"),
    )
    .await;
    let lib_i8 = Int8Codec::new(&cal)
        .encode(vectors.as_ref())
        .expect("encode");
    assert_eq!(
        sql_i8.as_fixed_size_list().values().to_data(),
        lib_i8.array.as_fixed_size_list().values().to_data()
    );

    // Asymmetric scores: int8_inner_product equals the library's prepared query.
    let q = read_column(&data("minilm-wordnet-queries-50.parquet"), "embedding");
    let qv = Vectors::try_new(q.as_ref()).expect("queries");
    let q0: Vec<String> = qv.row(0).iter().map(|x| x.to_string()).collect();
    let scores = column(
        &ctx,
        &format!(
            "SELECT int8_inner_product([{}], int8_quantize(embedding, '{json}')) FROM corpus ORDER BY id",
            q0.join(", ")
        ),
    )
    .await;
    let prepared = Int8Codec::new(&cal).prepare_query(qv.row(0));
    let codes = lib_i8.array.as_fixed_size_list();
    let scores = scores.as_primitive::<Float32Type>();
    for r in 0..codes.len() {
        let c = codes.value(r);
        let c = c.as_primitive::<datafusion::arrow::datatypes::Int8Type>();
        assert_eq!(scores.value(r), prepared.score_int8(c.values()), "row {r}");
    }
}

/// The SQL quantize functions are a front door of the one quantize spec: each returns,
/// byte for byte and with the same recipe and calibration in its field metadata, the column
/// `embquant quantize` writes for the same spec (int8 in SQL's list layout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantize_functions_write_the_jobs_columns() {
    let ctx = session().await;
    // Per-dimension ranges, and symmetric ranges for the whole tensor (which the recipes
    // of the int8 and int4 columns record).
    for method in ["minmax", "minmax+symmetric+per-tensor"] {
        same_columns_as_the_job(&ctx, method).await;
    }
}

async fn same_columns_as_the_job(ctx: &SessionContext, method: &str) {
    let cal = sql_calibration(ctx, method).await;
    assert_eq!(cal.shape().symmetric, method.contains("symmetric"));
    let json = cal.to_json().expect("json");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("job.parquet");
    let mut spec = embquant::job::QuantizeSpec::new("embedding");
    spec.schemes = ["int8", "int4", "binary", "rabitq4"]
        .map(String::from)
        .to_vec();
    spec.int8_layout = "list".into();
    let files = embquant::job::discover(&[data("minilm-wordnet-5k.parquet")
        .to_string_lossy()
        .into_owned()])
    .expect("discover");
    embquant::job::quantize(
        &files,
        &out,
        cal.clone(),
        &spec.job_options().expect("spec"),
        &embquant::job::NoProgress,
    )
    .await
    .expect("job");
    let job = {
        let f = std::fs::File::open(&out).expect("open");
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("parquet")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
    };
    let sql = collect(
        ctx,
        &format!(
            "SELECT int8_quantize(embedding, '{json}') AS embedding_int8, \
                    int4_quantize(embedding, '{json}') AS embedding_int4, \
                    binary_quantize(embedding) AS embedding_bin, \
                    rabitq_quantize(embedding, '{json}') AS embedding_rq, \
                    rabitq_quantize(embedding, '{json}', 4) AS embedding_rq4 \
             FROM corpus ORDER BY id"
        ),
    )
    .await;
    let sql = datafusion::arrow::compute::concat_batches(&sql[0].schema(), &sql).expect("concat");
    for name in [
        "embedding_int8",
        "embedding_int4",
        "embedding_bin",
        "embedding_rq",
        "embedding_rq4",
    ] {
        let (a, b) = (
            sql.column_by_name(name).expect("sql column"),
            job.column_by_name(name).expect("job column"),
        );
        assert_eq!(a.to_data(), b.to_data(), "{name}: the codes");
        let (fa, fb) = (
            sql.schema().field_with_name(name).expect("field").clone(),
            job.schema().field_with_name(name).expect("field").clone(),
        );
        assert_eq!(fa.data_type(), fb.data_type(), "{name}: the type");
        assert_eq!(
            fa.metadata(),
            fb.metadata(),
            "{name}: recipe and calibration"
        );
        assert!(fa.metadata().contains_key("embquant"), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_search_equals_library_search() {
    let ctx = session().await;
    let cal = sql_calibration(&ctx, "minmax").await;
    let json = cal.to_json().expect("json");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("corpus_q.parquet");
    let p = path.to_str().expect("utf-8");
    collect(
        &ctx,
        &format!(
            "COPY (SELECT id, embedding, binary_quantize(embedding) AS embedding_bin, \
             int8_quantize(embedding, '{json}') AS embedding_int8, \
             rabitq_quantize(embedding, '{json}') AS embedding_rq FROM corpus ORDER BY id) TO '{p}'"
        ),
    )
    .await;
    ctx.register_parquet("corpus_q", p, ParquetReadOptions::default())
        .await
        .expect("register");
    let queries = read_column(&data("minilm-wordnet-queries-50.parquet"), "embedding");
    let qv = Vectors::try_new(queries.as_ref()).expect("queries");
    let qids = read_column(&data("minilm-wordnet-queries-50.parquet"), "id");
    let qids = qids.as_primitive::<Int64Type>();
    // The library reads the file SQL wrote: the recipe and calibration must be in its metadata.
    let files = embquant::job::discover(&[p.to_string()]).expect("discover");
    for (chain, k) in [
        ("binary:8,int8:2,float", 10),
        ("binary:4,int8", 10),
        ("binary", 5),
        ("int8:3,float", 7),
        ("rabitq:4,int8", 10),
        ("rabitq:2,int8:2,float", 10),
    ] {
        let spec = TierSpec::parse_chain(chain).expect("chain");
        let loaded = load_corpus(&files, "embedding", Some("id"), &spec).expect("load_corpus");
        if chain.contains("int8") {
            assert_eq!(
                loaded.calibration.as_ref().map(|c| c.fingerprint()),
                Some(cal.fingerprint()),
                "{chain}: the calibration in the file SQL wrote"
            );
        }
        let lib = loaded.corpus.search(qv.values(), k, &spec).expect("search");
        let got = collect(
            &ctx,
            &format!(
                "SELECT query_id, rank, id, score, tier FROM tiered_search('corpus_q', 'queries', {k}, '{chain}') ORDER BY query_id, rank"
            ),
        )
        .await;
        let mut rows = Vec::new();
        for b in &got {
            let (q, r, i, s, t) = (
                b.column(0).as_primitive::<Int64Type>(),
                b.column(1).as_primitive::<UInt32Type>(),
                b.column(2).as_primitive::<Int64Type>(),
                b.column(3).as_primitive::<Float32Type>(),
                b.column(4).as_string::<i32>(),
            );
            for j in 0..b.num_rows() {
                rows.push((
                    q.value(j),
                    r.value(j),
                    i.value(j),
                    s.value(j),
                    t.value(j).to_string(),
                ));
            }
        }
        let mut want = Vec::new();
        for (qi, hits) in lib.iter().enumerate() {
            for (r, h) in hits.iter().enumerate() {
                want.push((
                    qids.value(qi),
                    r as u32 + 1,
                    loaded.ids[h.row as usize],
                    h.score,
                    h.tier.to_string(),
                ));
            }
        }
        want.sort_by_key(|w| (w.0, w.1));
        assert_eq!(rows.len(), 50 * k, "{chain}");
        assert_eq!(rows, want, "{chain}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_runs_partial_then_final_over_partitions() {
    let ctx = session().await;
    // Three files, so the scan has several partitions (one small file is a single one).
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (lo, hi)) in [(0, 1500), (1500, 3200), (3200, 5000)].iter().enumerate() {
        let p = dir.path().join(format!("part{i}.parquet"));
        collect(
            &ctx,
            &format!(
                "COPY (SELECT * FROM corpus WHERE id >= {lo} AND id < {hi}) TO '{}'",
                p.display()
            ),
        )
        .await;
    }
    ctx.register_parquet(
        "parts",
        dir.path().to_str().expect("utf-8"),
        ParquetReadOptions::default(),
    )
    .await
    .expect("register parts");
    collect(&ctx, "SET datafusion.execution.target_partitions = 4").await;
    let batches = collect(
        &ctx,
        "EXPLAIN SELECT embedding_calibration(embedding) FROM parts",
    )
    .await;
    let text: String = batches
        .iter()
        .flat_map(|b| {
            let c = b.column(1).as_string::<i32>();
            (0..c.len())
                .map(|i| c.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("mode=Partial"), "{text}");
    assert!(text.contains("mode=Final"), "{text}");
    assert!(text.contains("file_groups={3 groups"), "{text}");
    // The merged result: min/max merge exactly, so the same ranges as one pass.
    let merged = column(&ctx, "SELECT embedding_calibration(embedding) FROM parts").await;
    let merged =
        Calibration::from_json(merged.as_string::<i32>().value(0)).expect("calibration JSON");
    collect(&ctx, "SET datafusion.execution.target_partitions = 1").await;
    let one = sql_calibration(&ctx, "minmax").await;
    assert_eq!(merged.rows(), 5000);
    assert_eq!(merged.lo(), one.lo());
    assert_eq!(merged.hi(), one.hi());
    for (a, b) in merged.mean().iter().zip(one.mean()) {
        assert!((a - b).abs() <= 1e-6, "mean {a} vs {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliced_batches_give_the_same_results() {
    // Arrays that are slices of larger ones (offset != 0) must be read at their offset.
    let ctx = session().await;
    let cal = sql_calibration(&ctx, "minmax").await;
    let json = cal.to_json().expect("json");
    let whole = collect(
        &ctx,
        &format!(
            "SELECT id, embedding, int8_quantize(embedding, '{json}') AS codes, \
             binary_quantize(embedding) AS bits FROM corpus ORDER BY id LIMIT 100"
        ),
    )
    .await;
    let whole =
        datafusion::arrow::compute::concat_batches(&whole[0].schema(), &whole).expect("concat");
    let sliced = whole.slice(37, 50);
    ctx.register_batch("sliced", sliced).expect("register");
    let q = "[".to_string() + &vec!["0.05"; 384].join(", ") + "]";
    let got = column(
        &ctx,
        &format!(
            "SELECT int8_inner_product({q}, codes, '{json}') + inner_product({q}, embedding) \
             + hamming_distance(bits, binary_quantize({q})) + int8_dequantize(codes, '{json}')[5] \
             + subvector(embedding, 3, 4)[2] + l2_normalize(embedding)[7] FROM sliced ORDER BY id"
        ),
    )
    .await;
    let want = column(
        &ctx,
        &format!(
            "SELECT int8_inner_product({q}, int8_quantize(embedding, '{json}'), '{json}') + inner_product({q}, embedding) \
             + hamming_distance(binary_quantize(embedding), binary_quantize({q})) \
             + int8_dequantize(int8_quantize(embedding, '{json}'), '{json}')[5] \
             + subvector(embedding, 3, 4)[2] + l2_normalize(embedding)[7] \
             FROM corpus WHERE id >= 37 AND id < 87 ORDER BY id"
        ),
    )
    .await;
    assert_eq!(got.len(), 50);
    assert_eq!(got.to_data(), want.to_data());
}
