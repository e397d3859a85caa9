//! Calibrate on real embeddings and encode them with every codec.
//!
//! Reads the 5,000 all-MiniLM-L6-v2 vectors shipped in `tests/data`, computes per-dimension
//! statistics, derives min/max and quantile calibrations, encodes int8, uint8, int4,
//! binary (sign and centered), f16, bf16 and a Matryoshka prefix, and prints each column's
//! size, compression ratio and worst round-trip error.
//!
//! Run: `cargo run --release --example quantize_arrays`

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, FixedSizeListArray};
use embquant::{
    truncate, BinaryCodec, BinaryThreshold, Calibration, HalfCodec, HalfKind, Int4Codec, Int8Codec,
    MatryoshkaOptions, RangeMethod, Stats, StatsOptions, Vectors,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm-wordnet-5k.parquet");
    let mut stats: Option<Stats> = None;
    let mut batches = Vec::new();
    // Streaming calibration: one update per record batch.
    for batch in ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?
        .with_batch_size(512)
        .build()?
    {
        let column = batch?
            .column_by_name("embedding")
            .ok_or("no embedding column")?
            .clone();
        match &mut stats {
            None => stats = Some(Stats::compute(column.as_ref(), &StatsOptions::default())?),
            Some(s) => s.update(column.as_ref())?,
        }
        batches.push(column);
    }
    let stats = stats.ok_or("empty file")?;
    let refs: Vec<&dyn Array> = batches.iter().map(|a| a.as_ref()).collect();
    let vectors = arrow_select::concat::concat(&refs)?;
    let vectors = vectors.as_fixed_size_list();
    let (rows, dim) = (vectors.len(), vectors.value_length() as usize);

    let cal = Calibration::from_stats(&stats, RangeMethod::MinMax)?;
    let q999 = Calibration::from_stats(&stats, RangeMethod::Quantile { p: 0.999 })?;
    println!("{rows} vectors x {dim} dims from {}", path.display());
    println!(
        "calibration minmax fingerprint {}, degenerate dims {:?}",
        cal.fingerprint(),
        cal.degenerate_dims()
    );

    let float_bytes = (rows * dim * 4) as f64;
    println!(
        "\n{:<22} {:>9} {:>7} {:>8} {:>12}",
        "codec", "bytes", "ratio", "clipped", "max |error|"
    );
    let report = |name: &str, bytes: usize, clipped: u64, decoded: Option<FixedSizeListArray>| {
        let err = decoded.map_or(String::from("-"), |d| {
            format!("{:.2e}", max_error(vectors, &d))
        });
        println!(
            "{name:<22} {bytes:>9} {:>6.1}x {clipped:>8} {err:>12}",
            float_bytes / bytes as f64
        );
    };
    let i8c = Int8Codec::new(&cal);
    let e = i8c.encode(vectors)?;
    report(
        "int8 (minmax)",
        rows * dim,
        e.clipped,
        Some(i8c.decode(e.array.as_ref())?),
    );
    let i8q = Int8Codec::new(&q999);
    let e = i8q.encode(vectors)?;
    report(
        "int8 (quantile:0.999)",
        rows * dim,
        e.clipped,
        Some(i8q.decode(e.array.as_ref())?),
    );
    let e = i8c.encode_uint8(vectors)?;
    report(
        "uint8 (minmax)",
        rows * dim,
        e.clipped,
        Some(i8c.decode(e.array.as_ref())?),
    );
    let i4c = Int4Codec::new(&cal);
    let e = i4c.encode(vectors)?;
    report(
        "int4 (minmax)",
        rows * i4c.width(),
        e.clipped,
        Some(i4c.decode(e.array.as_ref())?),
    );
    let b = BinaryCodec::new(dim);
    let e = b.encode(vectors)?;
    report("binary (sign)", rows * b.width(), e.clipped, None);
    let bc = BinaryCodec::with_calibration(&cal, BinaryThreshold::Median)?;
    let e = bc.encode(vectors)?;
    report("binary (median)", rows * bc.width(), e.clipped, None);
    for kind in [HalfKind::F16, HalfKind::Bf16] {
        let h = HalfCodec::new(dim, kind);
        let e = h.encode(vectors)?;
        report(
            &format!("{kind:?}").to_lowercase(),
            rows * dim * 2,
            e.clipped,
            Some(h.decode(e.array.as_ref())?),
        );
    }
    let prefix = truncate(vectors, &MatryoshkaOptions::new(128))?;
    let pcal = Calibration::from_stats(
        &Stats::compute(&prefix, &StatsOptions::default())?,
        RangeMethod::MinMax,
    )?;
    let e = Int8Codec::new(&pcal).encode(&prefix)?;
    report("matryoshka 128 + int8", rows * 128, e.clipped, None);
    Ok(())
}

/// Largest absolute difference between the original and decoded vectors.
fn max_error(a: &FixedSizeListArray, b: &FixedSizeListArray) -> f32 {
    let a = Vectors::try_new(a).expect("vectors");
    let b = b.values().as_primitive::<Float32Type>().values();
    a.values()
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
