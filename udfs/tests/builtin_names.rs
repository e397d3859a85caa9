//! Functions named like a DataFusion built-in (`cosine_distance`, `inner_product`,
//! `dot_product`) return exactly what the built-in returns: the same SQL run in a plain
//! DataFusion session and in one with embquant's functions gives bit-identical results,
//! over vector columns of every layout, literals, NULL rows, NULL items, zero vectors and
//! integer items.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, Float64Array, Int32Array,
    Int64Array, LargeListArray, ListArray, RecordBatch,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::{SessionConfig, SessionContext};
use proptest::prelude::*;

const DIM: usize = 5;

/// A table of `rows` rows: `f32` (FixedSizeList<Float32>), `f64` (List<Float64>), `large`
/// (LargeList<Float32>), `ints` (List<Int32>), `holes` (FixedSizeList<Float32> with NULL
/// items); some rows NULL, some all zeros.
fn table(values: &[f32], nulls: &[bool], zeros: &[bool], holes: &[bool]) -> RecordBatch {
    let rows = nulls.len();
    let mut v = values.to_vec();
    for (r, &z) in zeros.iter().enumerate() {
        if z {
            v[r * DIM..(r + 1) * DIM].fill(0.0);
        }
    }
    let valid = NullBuffer::from(nulls.iter().map(|n| !n).collect::<Vec<_>>());
    let item = |t: DataType, nullable: bool| Arc::new(Field::new_list_field(t, nullable));
    let f32s = FixedSizeListArray::new(
        item(DataType::Float32, false),
        DIM as i32,
        Arc::new(Float32Array::from(v.clone())),
        Some(valid.clone()),
    );
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(DIM, rows));
    let f64s = ListArray::new(
        item(DataType::Float64, false),
        offsets.clone(),
        Arc::new(Float64Array::from_iter_values(
            v.iter().map(|&x| x as f64 * 0.5),
        )),
        Some(valid.clone()),
    );
    let large = LargeListArray::new(
        item(DataType::Float32, false),
        datafusion::arrow::buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(DIM, rows)),
        Arc::new(Float32Array::from(
            v.iter().map(|x| x + 0.25).collect::<Vec<_>>(),
        )),
        Some(valid.clone()),
    );
    let ints = ListArray::new(
        item(DataType::Int32, false),
        offsets,
        Arc::new(Int32Array::from_iter_values(
            v.iter().map(|&x| (x * 10.0) as i32),
        )),
        Some(valid.clone()),
    );
    let hole_items: Vec<Option<f32>> = v
        .iter()
        .enumerate()
        .map(|(i, &x)| (!(holes[i / DIM] && i % DIM == 2)).then_some(x))
        .collect();
    let holey = FixedSizeListArray::new(
        item(DataType::Float32, true),
        DIM as i32,
        Arc::new(Float32Array::from(hole_items)),
        Some(valid),
    );
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        Arc::new(f32s),
        Arc::new(f64s),
        Arc::new(large),
        Arc::new(ints),
        Arc::new(holey),
    ];
    let schema = Schema::new(
        ["id", "f32", "f64", "large", "ints", "holes"]
            .iter()
            .zip(&cols)
            .map(|(n, c)| Field::new(*n, c.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

async fn results(ctx: &SessionContext, sql: &str) -> Vec<Option<u64>> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        assert_eq!(b.column(0).data_type(), &DataType::Float64, "{sql}");
        let c = b.column(0).as_primitive::<Float64Type>();
        out.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i).to_bits())));
    }
    out
}

fn same(batch: RecordBatch) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let plain = SessionContext::new_with_config(SessionConfig::new());
        let ours = SessionContext::new_with_config(embquant_udfs::session_config());
        embquant_udfs::register_all(&ours);
        // The session runs embquant's functions under the built-ins' names.
        for f in ["cosine_distance", "inner_product", "dot_product"] {
            let udf = ours.udf(f).unwrap();
            let doc = udf.documentation().unwrap();
            assert_eq!(doc.doc_section.label, "embquant Functions", "{f}");
        }
        for ctx in [&plain, &ours] {
            let t = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).unwrap();
            ctx.register_table("t", Arc::new(t)).unwrap();
        }
        let args = [
            ("f32", "f32"),
            ("f32", "f64"),
            ("f64", "large"),
            ("large", "f32"),
            ("f32", "[0.5, -1.0, 0.25, 2.0, 0.0]"),
            ("[1, 2, 3, 4, 5]", "f32"),
            ("ints", "f32"),
            ("holes", "f32"),
            ("f32", "NULL"),
        ];
        for f in ["cosine_distance", "inner_product", "dot_product"] {
            for (a, b) in args {
                let sql = format!("SELECT {f}({a}, {b}) FROM t ORDER BY id");
                assert_eq!(
                    results(&ours, &sql).await,
                    results(&plain, &sql).await,
                    "{sql}"
                );
            }
            let sql = format!("SELECT {f}([1.0, 2.0, 0.5], [3.0, 4.0, 0.0])");
            assert_eq!(
                results(&ours, &sql).await,
                results(&plain, &sql).await,
                "{sql}"
            );
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn the_functions_named_like_a_builtin_return_exactly_what_it_returns(
        rows in 1usize..40,
        seed in any::<u64>(),
    ) {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let values: Vec<f32> = (0..rows * DIM)
            .map(|_| (next() % 20001) as f32 / 1000.0 - 10.0)
            .collect();
        let mut flags = |m: u64| (0..rows).map(|_| next() % m == 0).collect::<Vec<_>>();
        let (nulls, zeros, holes) = (flags(7), flags(5), flags(4));
        same(table(&values, &nulls, &zeros, &holes));
    }
}

/// Speed against the built-in on an embedding column (50k x 384 `FixedSizeList<Float32>`
/// against a literal query): a measurement, not a check. Run with
/// `cargo test --workspace --test builtin_names -- --ignored --nocapture`.
#[test]
#[ignore]
fn speed_against_the_builtin() {
    let (rows, dim) = (50_000usize, 384usize);
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 2001) as f32 / 1000.0 - 1.0
    };
    let values: Vec<f32> = (0..rows * dim).map(|_| next()).collect();
    let col = FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        dim as i32,
        Arc::new(Float32Array::from(values)),
        None,
    );
    let schema = Arc::new(Schema::new(vec![Field::new(
        "emb",
        col.data_type().clone(),
        false,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).unwrap();
    let query: Vec<String> = (0..dim).map(|_| format!("{:.3}", next())).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let plain = SessionContext::new_with_config(SessionConfig::new());
        let ours = SessionContext::new_with_config(embquant_udfs::session_config());
        embquant_udfs::register_all(&ours);
        for ctx in [&plain, &ours] {
            let batches: Vec<RecordBatch> = (0..rows)
                .step_by(8192)
                .map(|o| batch.slice(o, 8192.min(rows - o)))
                .collect();
            let t = MemTable::try_new(schema.clone(), vec![batches]).unwrap();
            ctx.register_table("t", Arc::new(t)).unwrap();
        }
        for f in ["cosine_distance", "inner_product"] {
            let sql = format!("SELECT sum({f}(emb, [{}])) FROM t", query.join(", "));
            let mut best = [f64::MAX; 2];
            for _ in 0..5 {
                for (i, ctx) in [&plain, &ours].iter().enumerate() {
                    let t = std::time::Instant::now();
                    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                }
            }
            println!(
                "{f}: built-in {:.1} ms, embquant {:.1} ms ({:.1}x)",
                best[0] * 1e3,
                best[1] * 1e3,
                best[0] / best[1]
            );
        }
    });
}
