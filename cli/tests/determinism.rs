//! Outputs and search results do not depend on the number of threads.

use std::path::Path;
use std::process::{Command, Output};

fn embquant(args: &[&str], cwd: &Path, threads: &str) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_embquant"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("run embquant");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn outputs_are_identical_for_1_2_and_8_threads() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    embquant(
        &[
            "gen-synthetic",
            "--rows",
            "20000",
            "--dims",
            "64",
            "--row-group-rows",
            "3000",
            "-o",
            "in.parquet",
        ],
        p,
        "2",
    );
    embquant(
        &[
            "gen-synthetic",
            "--rows",
            "200",
            "--dims",
            "64",
            "--seed",
            "9",
            "-o",
            "q.parquet",
        ],
        p,
        "2",
    );
    let mut first: Option<Vec<Vec<u8>>> = None;
    for threads in ["1", "2", "8"] {
        let run = |args: &[&str]| embquant(args, p, threads);
        run(&[
            "calibrate",
            "in.parquet",
            "--method",
            "quantile:0.99",
            "-o",
            "cal.json",
        ]);
        run(&[
            "quantize",
            "in.parquet",
            "--scheme",
            "int8,int4,binary,f16,rabitq",
            "--concurrency",
            "4",
            "--batch-rows",
            "700",
            "-o",
            "c.parquet",
        ]);
        run(&[
            "quantize",
            "in.parquet",
            "--calibration",
            "cal.json",
            "--target-file-rows",
            "6000",
            "-o",
            "parts",
        ]);
        let mut outputs = vec![
            std::fs::read(p.join("cal.json")).unwrap(),
            std::fs::read(p.join("c.parquet")).unwrap(),
        ];
        for i in 0..4 {
            outputs.push(std::fs::read(p.join(format!("parts/part-{i:05}.parquet"))).unwrap());
        }
        for tiers in [
            "binary:8,int8:2,float",
            "rabitq:4,int8",
            "int4:4,f16",
            "int8",
        ] {
            run(&[
                "search",
                "--corpus",
                "c.parquet",
                "--queries",
                "q.parquet",
                "--k",
                "10",
                "--tiers",
                tiers,
                "-o",
                "r.parquet",
            ]);
            outputs.push(std::fs::read(p.join("r.parquet")).unwrap());
        }
        // The recall report's numbers (not its timings).
        run(&[
            "recall",
            "--corpus",
            "in.parquet",
            "--queries",
            "q.parquet",
            "--k",
            "1,10",
            "--configs",
            "int8;binary:4,int8;rabitq:4,int8:2,float",
            "--report",
            "rep",
        ]);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("rep/report.json")).unwrap()).unwrap();
        let numbers: Vec<String> = report["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} {}", c["config"], c["recall"], c["loss"]))
            .collect();
        outputs.push(numbers.join("\n").into_bytes());
        outputs.push(std::fs::read(p.join("rep/ground_truth.parquet")).unwrap());
        std::fs::remove_dir_all(p.join("rep")).unwrap();
        match &first {
            None => first = Some(outputs),
            Some(f) => {
                for (i, (a, b)) in f.iter().zip(&outputs).enumerate() {
                    assert!(
                        a == b,
                        "output {i} differs with RAYON_NUM_THREADS={threads}"
                    );
                }
            }
        }
    }
}
