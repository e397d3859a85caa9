//! Fuzz-style SQL: every embquant function called with random argument types, NULL
//! patterns, extreme integers and malformed calibrations, over a small table with float,
//! code and null rows. Each query ends in rows or an error, never a panic.
//!
//! Longer run: `EMBQUANT_FUZZ_CASES=5000 cargo test --workspace --test fuzz_sql`.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use datafusion::prelude::SessionContext;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("EMBQUANT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

struct Env {
    rt: tokio::runtime::Runtime,
    ctx: SessionContext,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let ctx = SessionContext::new_with_config(embquant_udfs::session_config());
        embquant_udfs::register_all(&ctx);
        rt.block_on(async {
            // Floats (with a null row and a zero vector), and their codes.
            ctx.sql(
                "CREATE TABLE t AS SELECT id, arrow_cast(e, 'FixedSizeList(4, Float32)') AS embedding \
                 FROM (VALUES \
                 (1, [0.1, -0.2, 0.3, 0.05]), (2, [0.0, 0.0, 0.0, 0.0]), (3, NULL), \
                 (4, [1e30, -1e30, 2.0, 3.0]), (5, [0.5, 0.5, -0.5, 0.25])) AS v(id, e)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
            ctx.sql(
                "CREATE TABLE c AS SELECT id, embedding, \
                 int8_quantize(embedding, (SELECT embedding_calibration(embedding) FROM t)) AS e8, \
                 binary_quantize(embedding) AS eb FROM t",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        });
        Env { rt, ctx }
    })
}

const CAL: &str = "(SELECT embedding_calibration(embedding) FROM t)";

/// A valid call of every function (name, arguments); cases replace some arguments.
fn templates() -> Vec<(&'static str, Vec<String>)> {
    let cal = CAL.to_string();
    let e = || "embedding".to_string();
    vec![
        ("binary_quantize", vec![e()]),
        ("int8_quantize", vec![e(), cal.clone()]),
        ("int8_dequantize", vec!["e8".into()]),
        ("int4_quantize", vec![e(), cal.clone()]),
        (
            "int4_dequantize",
            vec![format!("int4_quantize(embedding, {CAL})"), cal.clone()],
        ),
        ("subvector", vec![e(), "1".into(), "2".into()]),
        ("l2_normalize", vec![e()]),
        ("hamming_distance", vec!["eb".into(), "eb".into()]),
        ("inner_product", vec![e(), e()]),
        ("cosine_distance", vec![e(), e()]),
        ("l2_distance", vec![e(), e()]),
        ("int8_inner_product", vec![e(), "e8".into()]),
        ("rabitq_quantize", vec![e(), cal.clone()]),
        (
            "rabitq_inner_product",
            vec![
                e(),
                format!("rabitq_quantize(embedding, {CAL})"),
                cal.clone(),
            ],
        ),
        (
            "recall_at_k",
            vec!["make_array(1, 2)".into(), "make_array(2, 3)".into()],
        ),
        ("embedding_calibration", vec![e()]),
    ]
}

fn args() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "embedding",
        "e8",
        "eb",
        "id",
        "NULL",
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "1e308",
        "'not json'",
        "'{}'",
        "'{\"version\":1}'",
        "''",
        "'quantile:2'",
        "'minmax'",
        "[0.1, 0.2]",
        "[0.1, 0.2, 0.3, 0.4]",
        "[]",
        "[NULL, 1.0, 2.0, 3.0]",
        "make_array(1, 2, 3)",
        "X'00'",
        "X'FFFF'",
        "arrow_cast(embedding, 'LargeList(Float64)')",
        "CAST(NULL AS INT)",
        "(SELECT embedding_calibration(embedding) FROM t)",
    ])
    .prop_map(str::to_string)
}

fn queries() -> impl Strategy<Value = String> {
    // A template with each argument replaced (1 in 3) by a random one, sometimes one
    // argument more or fewer.
    let call = (
        prop::sample::select(templates()),
        prop::collection::vec((0u8..3, args()), 4),
        0u8..6,
    )
        .prop_map(|((f, mut a), swaps, arity)| {
            for (i, (coin, r)) in swaps.into_iter().enumerate() {
                if coin == 0 {
                    if i < a.len() {
                        a[i] = r;
                    } else if arity == 0 {
                        a.push(r);
                    }
                }
            }
            if arity == 1 {
                a.pop();
            }
            format!("{f}({})", a.join(", "))
        });
    let table = prop_oneof![
        (
            0i64..4,
            prop::sample::select(vec!["1", "9223372036854775807", "-5", "NULL"]),
            prop::sample::select(vec![
                "'binary:2,int8'",
                "'int8:2,int8'",
                "'bogus'",
                "'binary:18446744073709551615,int8'",
                "NULL"
            ])
        )
            .prop_map(|(_, k, t)| format!("SELECT * FROM tiered_search('c', 't', {k}, {t})")),
        Just("SELECT * FROM tiered_search('c', 'nosuch', 3)".to_string()),
    ];
    prop_oneof![
        4 => call.prop_map(|c| format!("SELECT {c} FROM c")),
        1 => table,
    ]
}

/// Random SQL calls: each ends in rows or an error (never a panic), and the generator is
/// not all errors: a fair share of the calls return rows, so the functions' bodies are
/// fuzzed, not just their argument checks.
#[test]
fn random_sql_calls_end_in_rows_or_errors() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (ok, run) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/fuzz_sql.txt",
            ),
        )),
        ..ProptestConfig::default()
    });
    let result = runner.run(&queries(), |sql| {
        let e = env();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            e.rt.block_on(async {
                match e.ctx.sql(&sql).await {
                    Ok(df) => df.collect().await.map(|_| ()),
                    Err(err) => Err(err),
                }
            })
        }));
        match r {
            Err(_) => return Err(TestCaseError::fail(format!("{sql}: panicked"))),
            Ok(Err(err)) => {
                let msg = err.to_string();
                if std::env::var_os("EMBQUANT_FUZZ_VERBOSE").is_some() {
                    eprintln!("{sql}\n  -> {msg}");
                }
                prop_assert!(!msg.contains("panicked"), "{sql}: {msg}");
            }
            Ok(Ok(())) => {
                ok.fetch_add(1, Ordering::Relaxed);
            }
        }
        run.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (ok, run) = (ok.into_inner(), run.into_inner());
    eprintln!("fuzz_sql: {run} queries, {ok} returned rows");
    assert!(run >= cases() as usize, "{run} queries ran");
    assert!(
        ok >= run / 10,
        "only {ok} of {run} random queries returned rows"
    );
}
