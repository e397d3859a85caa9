//! `report.md` and the main table printed by the CLI.

use super::model::RecallReport;

/// `report.md`: the tables a person reads.
pub fn markdown(r: &RecallReport) -> String {
    let mut s = String::new();
    let kmax = *r.ks.last().unwrap_or(&10);
    let kmain = if r.ks.contains(&10) { 10 } else { kmax };
    s.push_str("# embquant recall report\n\n");
    s.push_str(&format!(
        "{} corpus rows x {} dims, {} queries{}; calibration {}.\n\n",
        r.corpus_rows,
        r.dim,
        r.queries,
        if r.sampled_queries {
            " sampled from the corpus (each excluded from its own results)"
        } else {
            ""
        },
        r.calibration
    ));
    s.push_str(&format!(
        "Ground truth: exact inner product, top-{kmax} per query, {} in {:.2} s{} (fingerprint {}).\n\n",
        if r.ground_truth.cached { "read from the cache" } else { "computed" },
        r.ground_truth.seconds,
        r.ground_truth.queries_per_s.map_or(String::new(), |q| format!(", {q:.0} queries/s")),
        r.ground_truth.fingerprint
    ));
    if let Some(rec) = &r.recommendation {
        s.push_str(&format!(
            "**Recommendation** for recall {}: `{}` (recall {:.4}, {} bytes read per query, {} candidates rescored):\n\n```sh\n{}\n```\n\n",
            rec.target, rec.config, rec.recall, rec.bytes_read_per_query, rec.candidates, rec.commands.join("\n")
        ));
    }
    if let Some(u) = &r.target_unmet {
        s.push_str(&format!("**Target not met**: {u}.\n\n"));
    }
    for g in &r.gates {
        s.push_str(&format!(
            "Gate `{}`: recall {:.4}, {}\n\n",
            g.gate,
            g.recall,
            if g.passed { "passed" } else { "**FAILED**" }
        ));
    }
    s.push_str("## Recall per configuration\n\n");
    s.push_str(&table(r, kmain));
    s.push_str(&format!(
        "\nPareto front (recall@{kmax} vs bytes per vector): {}.\n\n",
        r.pareto
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.push_str(&format!("## Recall lost per tier (k = {kmain})\n\n"));
    s.push_str(
        "| configuration | tier: kept rows, share of the exact top-k kept, lost |\n| --- | --- |\n",
    );
    for c in r
        .configs
        .iter()
        .filter(|c| c.loss.get(&kmain).is_some_and(|l| l.len() > 1))
    {
        let l = &c.loss[&kmain];
        s.push_str(&format!(
            "| {} | {} |\n",
            c.config,
            l.iter()
                .map(|t| format!(
                    "{}: {} rows, {:.4}, -{:.4}",
                    t.tier, t.kept, t.candidate_recall, t.lost
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if let Some(cc) = &r.calibration_check {
        s.push_str(&format!(
            "\n## Calibration on a sample of {} rows\n\n{:.4}% of the corpus's values fall outside the sample's ranges (clipped by int8).\n\n| configuration | recall@{} full calibration | sample calibration | drop |\n| --- | ---: | ---: | ---: |\n",
            cc.rows,
            100.0 * cc.clip_rate,
            cc.k
        ));
        for d in &cc.configs {
            s.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:+.4} |\n",
                d.config, d.full, d.sampled, d.drop
            ));
        }
    }
    s
}

/// The main table: configuration, bytes, compression, recall@k (mean [95% CI]) per k, p5 at
/// `kmain`, queries/s.
pub fn table(r: &RecallReport, kmain: usize) -> String {
    let mut s = String::from("| configuration | bytes/vector | compression |");
    for k in &r.ks {
        s.push_str(&format!(" recall@{k} [95% CI] |"));
    }
    s.push_str(&format!(" p5@{kmain} | queries/s |\n| --- | ---: | ---: |"));
    for _ in &r.ks {
        s.push_str(" ---: |");
    }
    s.push_str(" ---: | ---: |\n");
    for c in &r.configs {
        s.push_str(&format!(
            "| {} | {} | {:.1}x |",
            c.config, c.bytes_per_vector, c.compression
        ));
        for k in &r.ks {
            let st = c.recall[k];
            s.push_str(&format!(
                " {:.4} [{:.3}, {:.3}] |",
                st.mean, st.ci95[0], st.ci95[1]
            ));
        }
        s.push_str(&format!(
            " {:.2} | {:.0} |\n",
            c.recall.get(&kmain).map_or(0.0, |x| x.p5),
            c.queries_per_s
        ));
    }
    s
}
