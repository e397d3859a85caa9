//! Fuzz-style robustness on the stable toolchain: mutated Parquet files (bit flips,
//! truncations, byte overwrites in the footer), mutated calibration and recipe JSON, random
//! tier chains and k. Every case must end in `Ok` or a typed error, within a time budget:
//! never a panic, a hang or an allocation the input asked for.
//!
//! CI runs a short pass. A longer run (minutes):
//! `EMBQUANT_FUZZ_CASES=20000 cargo test --workspace --test fuzz --release`.
//! Failures print the proptest seed; proptest keeps it in
//! `proptest-regressions/fuzz.txt`, which is committed and replayed first on every run.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use embquant::job::{self, CalibrateOptions, JobOptions, NoProgress};
use embquant::metadata::ColumnRecipe;
use embquant::search::{load_corpus, TierSpec};
use embquant::{Calibration, Scheme};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("EMBQUANT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Time allowed for one case: far above what a valid input of this size takes.
const BUDGET: Duration = Duration::from_secs(10);

struct Seeds {
    _dir: tempfile::TempDir,
    /// A small quantized file (int8, int4, binary, f16, rabitq codes and the floats).
    quantized: Vec<u8>,
    /// Its calibration JSON and one code column's recipe JSON.
    calibration: String,
    recipe: String,
}

/// The valid inputs the mutations start from, made once.
fn seeds() -> &'static Seeds {
    static S: OnceLock<Seeds> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rows = 300usize;
        let dim = 24usize;
        let mut state = 7u64;
        let values: Vec<f32> = (0..rows * dim)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        let floats = dir.path().join("floats.parquet");
        write_floats(&floats, &values, dim, 100);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let files = job::discover(&[floats.display().to_string()]).unwrap();
        let cal = rt
            .block_on(job::calibrate(
                &files,
                &CalibrateOptions::new("embedding"),
                Arc::new(NoProgress),
            ))
            .unwrap();
        let mut opts = JobOptions::new("embedding");
        opts.quantize.schemes = vec![
            Scheme::Int8,
            Scheme::Int4,
            Scheme::Binary,
            Scheme::F16,
            Scheme::Rabitq,
        ];
        opts.row_group_rows = 100;
        let out = dir.path().join("q.parquet");
        rt.block_on(job::quantize(&files, &out, cal.clone(), &opts, &NoProgress))
            .unwrap();
        let quantized = std::fs::read(&out).unwrap();
        let reader =
            embquant::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&out).unwrap(),
            )
            .unwrap();
        let recipe = reader
            .schema()
            .fields()
            .iter()
            .find_map(|f| f.metadata().get(embquant::METADATA_KEY).cloned())
            .unwrap();
        Seeds {
            _dir: dir,
            quantized,
            calibration: cal.to_json().unwrap(),
            recipe,
        }
    })
}

fn write_floats(path: &Path, values: &[f32], dim: usize, group: usize) {
    use embquant::arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch};
    use embquant::arrow_schema::{DataType, Field};
    let item = Arc::new(Field::new_list_field(DataType::Float32, false));
    let emb: ArrayRef = Arc::new(FixedSizeListArray::new(
        item,
        dim as i32,
        Arc::new(Float32Array::from(values.to_vec())),
        None,
    ));
    let batch = RecordBatch::try_from_iter([("embedding", emb)]).unwrap();
    let props = embquant::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .build();
    let mut w = embquant::parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Runs `f`, failing the case on a panic or when it takes longer than the budget.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let t = Instant::now();
    let r = std::panic::catch_unwind(AssertUnwindSafe(f));
    let took = t.elapsed();
    match r {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(TestCaseError::fail(format!("{what}: panicked: {msg}")))
        }
        Ok(_) if took > BUDGET => Err(TestCaseError::fail(format!(
            "{what}: took {took:?} (budget {BUDGET:?})"
        ))),
        Ok(v) => Ok(v),
    }
}

/// Everything the CLI does with a quantized input: discover (footer), calibrate, quantize,
/// load the corpus for a chain, search.
/// How deep it got: 0 refused at discovery, 1 read, 2 loaded, 3 searched.
fn exercise(bytes: &[u8], chain: &str, k: usize) -> Result<usize, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.parquet");
    std::fs::write(&path, bytes).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    no_panic("discover + calibrate + quantize + search", || {
        let Ok(files) = job::discover(&[path.display().to_string()]) else {
            return 0;
        };
        let _ = rt.block_on(job::calibrate(
            &files,
            &CalibrateOptions::new("embedding"),
            Arc::new(NoProgress),
        ));
        if let Ok(cal) = Calibration::from_json(&seeds().calibration) {
            let out = dir.path().join("out.parquet");
            let _ = rt.block_on(job::quantize(
                &files,
                &out,
                cal,
                &JobOptions::new("embedding"),
                &NoProgress,
            ));
        }
        let Ok(chain) = TierSpec::parse_chain(chain) else {
            return 1;
        };
        let Ok(loaded) = load_corpus(&files, "embedding", None, &chain) else {
            return 1;
        };
        let q = vec![0.1f32; loaded.corpus.dim() * 3];
        if loaded.corpus.search(&q, k, &chain).is_ok() {
            3
        } else {
            2
        }
    })
}

/// Runs `test` on `cases()` values of `strategy` (failures persisted like `proptest!`'s)
/// and returns how many cases reached each depth (see [`exercise`]).
fn run_counted<S: Strategy>(
    strategy: S,
    test: impl Fn(S::Value) -> Result<usize, TestCaseError>,
) -> [usize; 4] {
    let reached: [AtomicUsize; 4] = Default::default();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/fuzz.txt"),
        )),
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&strategy, |v| {
        reached[test(v)?].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }) {
        panic!("{e}");
    }
    reached.map(|r| r.into_inner())
}

/// Mutated files: none panics or hangs, and the mutations are not all caught at the door
/// (some are read, some load, some are searched), so the deeper code is fuzzed too.
#[test]
fn mutated_parquet_files_end_in_ok_or_an_error() {
    let d = run_counted((mutations(), chains(), ks()), |(ms, chain, k)| {
        exercise(&apply(&seeds().quantized, &ms), &chain, k)
    });
    eprintln!("mutated files: depth counts (refused, read, loaded, searched) {d:?}");
    let n = cases() as usize;
    assert!(
        d[1] + d[2] + d[3] >= n / 10,
        "{d:?}: the mutations rarely get past discovery"
    );
    assert!(
        d[2] + d[3] >= 1 && d[3] >= 1,
        "{d:?}: no mutated file was loaded and searched"
    );
}

/// Random chains and k on a valid file: refused or answered, and many answered.
#[test]
fn random_chains_and_k_on_a_valid_file() {
    let d = run_counted((chains(), ks()), |(chain, k)| {
        exercise(&seeds().quantized, &chain, k)
    });
    eprintln!("random chains: depth counts (refused, read, loaded, searched) {d:?}");
    assert_eq!(d[0], 0, "a valid file was refused at discovery");
    assert!(d[3] >= cases() as usize / 10, "{d:?}: few chains searched");
}

fn chains() -> impl Strategy<Value = String> {
    let valid = prop::sample::select(vec![
        "binary:4,int8",
        "binary:8,int8:2,float",
        "rabitq:4,int8",
        "int4:4,f16",
        "int8",
        "f16:2,float",
    ])
    .prop_map(str::to_string);
    prop_oneof![3 => valid, 2 => random_chains()]
}

fn random_chains() -> impl Strategy<Value = String> {
    let tier = prop::sample::select(vec![
        "binary", "int8", "int4", "f16", "rabitq", "float", "bogus", "",
    ]);
    let factor = prop_oneof![
        Just(String::new()),
        (0usize..20).prop_map(|f| format!(":{f}")),
        Just(":18446744073709551615".to_string()),
        Just(":-3".to_string()),
        Just(":x".to_string()),
    ];
    prop::collection::vec((tier, factor), 1..5).prop_map(|v| {
        v.into_iter()
            .map(|(t, f)| format!("{t}{f}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn ks() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..50,
        Just(usize::MAX),
        Just(1usize << 40),
        Just(4_294_967_297)
    ]
}

/// One mutation of a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    /// Overwrite near the end: the footer and its length.
    SetTail {
        back: usize,
        byte: u8,
    },
    Truncate {
        keep: usize,
    },
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let m = prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (0usize..2048, any::<u8>()).prop_map(|(back, byte)| Mutation::SetTail { back, byte }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
    ];
    prop::collection::vec(m, 1..6)
}

fn apply(bytes: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for m in ms {
        if b.is_empty() {
            break;
        }
        let n = b.len();
        match *m {
            Mutation::Flip { at, bit } => b[at % n] ^= 1 << bit,
            Mutation::Set { at, byte } => b[at % n] = byte,
            Mutation::SetTail { back, byte } => b[n - 1 - back % n] = byte,
            Mutation::Truncate { keep } => b.truncate(keep % n),
        }
    }
    b
}

/// Mutations of a JSON text: characters replaced, numbers swapped for extreme values.
fn json_mutations() -> impl Strategy<Value = Vec<(usize, String)>> {
    let repl = prop::sample::select(vec![
        "",
        "0",
        "-1",
        "1e308",
        "1e40",
        "NaN",
        "null",
        "\"x\"",
        "[]",
        "{}",
        "9999999999999",
        "18446744073709551616",
        ",",
        "\"",
    ]);
    prop::collection::vec((any::<usize>(), repl.prop_map(str::to_string)), 1..5)
}

fn apply_json(text: &str, ms: &[(usize, String)]) -> String {
    let mut s = text.to_string();
    for (at, r) in ms {
        if s.is_empty() {
            break;
        }
        // Replace one token-ish run starting at a char boundary.
        let mut i = at % s.len();
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        let end = s[i..]
            .find([',', '}', ']', ':'])
            .map_or(s.len(), |e| i + e.max(1));
        s.replace_range(i..end, r);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/fuzz.txt"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_calibration_and_recipe_json(cm in json_mutations(), rm in json_mutations()) {
        let cal = apply_json(&seeds().calibration, &cm);
        let recipe = apply_json(&seeds().recipe, &rm);
        no_panic("calibration and recipe JSON", || {
            let c = Calibration::from_json(&cal);
            let mut m = std::collections::HashMap::new();
            m.insert(embquant::METADATA_KEY.to_string(), recipe.clone());
            m.insert("embquant.calibration".to_string(), cal.clone());
            let _ = ColumnRecipe::from_field_metadata(&m);
            if let Ok(c) = c {
                // A calibration that parses is usable by every codec of its dimension.
                let v = vec![0.25f32; c.dim()];
                let codec = embquant::Int8Codec::new(&c);
                let mut out = vec![0u8; c.dim()];
                let _ = codec.encode_slice(&v, &mut out, 0x80);
                let _ = embquant::RabitqCodec::new(&c, embquant::Rotation::default());
            }
        })?;
    }
}
