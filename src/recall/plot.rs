//! `recall.svg`: recall@k against bytes per vector (one point per configuration, the Pareto
//! front joined), and recall@k against oversampling for each tier chain family.

use plotters::prelude::*;

use super::model::RecallReport;
use crate::error::{Error, Result};

const FAMILY_COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn err<E: std::fmt::Display>(e: E) -> Error {
    Error::io("drawing recall.svg", std::io::Error::other(e.to_string()))
}

/// The chain with its first factor replaced by `{f}`, and that factor (`binary:4,int8` ->
/// (`binary:{f},int8`, 4)); None for single-tier chains.
fn family(tiers: &str) -> Option<(String, usize)> {
    let (first, rest) = tiers.split_once(',')?;
    let (name, f) = first.split_once(':')?;
    Some((format!("{name}:{{f}},{rest}"), f.parse().ok()?))
}

/// Draws the report's plot at recall@`k` as an SVG document.
pub fn svg(report: &RecallReport, k: usize) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1200, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (left, right) = root.split_horizontally(620);
        let rec = |c: &super::model::ConfigResult| c.recall.get(&k).map_or(0.0, |s| s.mean);
        let ymin = report
            .configs
            .iter()
            .map(rec)
            .fold(1.0f64, f64::min)
            .clamp(0.0, 0.99);
        let ymin = (ymin * 20.0).floor() / 20.0;
        let xmax = report
            .configs
            .iter()
            .map(|c| c.bytes_per_vector.max(1))
            .max()
            .unwrap_or(1) as f64
            * 1.6;
        let mut chart = ChartBuilder::on(&left)
            .caption(
                format!(
                    "recall@{k} vs bytes per vector ({} rows)",
                    report.corpus_rows
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (4f64..xmax).log_scale().with_key_points(vec![
                    4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
                ]),
                ymin..1.0f64,
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(240, 240, 240))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("bytes per vector held in memory (log scale)")
            .y_desc(format!("recall@{k}"))
            .draw()
            .map_err(err)?;
        let pts: Vec<(f64, f64, bool, &str)> = report
            .configs
            .iter()
            .map(|c| {
                (
                    c.bytes_per_vector.max(4) as f64,
                    rec(c),
                    report.pareto.contains(&c.config),
                    c.config.as_str(),
                )
            })
            .collect();
        chart
            .draw_series(
                pts.iter()
                    .filter(|p| !p.2)
                    .map(|&(x, y, _, _)| Circle::new((x, y), 4, RGBColor(150, 150, 150).filled())),
            )
            .map_err(err)?
            .label("configuration")
            .legend(|(x, y)| Circle::new((x, y), 4, RGBColor(150, 150, 150).filled()));
        let mut front: Vec<(f64, f64)> = pts.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(front.clone(), RED.stroke_width(2)))
            .map_err(err)?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], RED.stroke_width(2)));
        chart
            .draw_series(
                front
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 5, RED.filled())),
            )
            .map_err(err)?;
        for &(x, y, on, name) in &pts {
            if on {
                chart
                    .draw_series(std::iter::once(Text::new(
                        name.to_string(),
                        (x * 1.06, y - (1.0 - ymin) * 0.012),
                        ("sans-serif", 12).into_font().color(&BLACK),
                    )))
                    .map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;

        // Recall against oversampling, one line per chain family (full dimensions).
        let mut fams: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for c in report.configs.iter().filter(|c| c.dims == report.dim) {
            if let Some((name, f)) = family(&c.tiers) {
                match fams.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, v)) => v.push((f as f64, rec(c))),
                    None => fams.push((name, vec![(f as f64, rec(c))])),
                }
            }
        }
        fams.retain(|(_, v)| v.len() > 1);
        let fmax = fams
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.0))
            .fold(2.0f64, f64::max)
            * 1.3;
        let ymin2 = fams
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.1))
            .fold(1.0f64, f64::min)
            .clamp(0.0, 0.99);
        let ymin2 = (ymin2 * 20.0).floor() / 20.0;
        let mut chart = ChartBuilder::on(&right)
            .caption(format!("recall@{k} vs oversampling"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (0.8f64..fmax)
                    .log_scale()
                    .with_key_points(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
                ymin2..1.0f64,
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(240, 240, 240))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("oversampling of the first tier (k x factor candidates, log scale)")
            .y_desc(format!("recall@{k}"))
            .draw()
            .map_err(err)?;
        for (i, (name, mut v)) in fams.into_iter().enumerate() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = FAMILY_COLORS[i % FAMILY_COLORS.len()];
            chart
                .draw_series(LineSeries::new(v.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(name.replace("{f}", "f"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x - 8, y), (x + 8, y)], color.stroke_width(2))
                });
            chart
                .draw_series(v.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_replace_the_first_factor() {
        assert_eq!(
            family("binary:4,int8:2,float"),
            Some(("binary:{f},int8:2,float".into(), 4))
        );
        assert_eq!(family("int8"), None);
    }
}
