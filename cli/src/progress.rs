//! Progress bars on stderr (only when it is a terminal and not `--quiet`).

use std::io::IsTerminal;

use embquant::job::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// An indicatif bar per phase: rows, rows/s, MB/s of float input, ETA.
pub struct Bars {
    bar: ProgressBar,
    bytes_per_row: u64,
}

impl Bars {
    /// Bars that draw only when stderr is a terminal and `quiet` is off.
    pub fn new(quiet: bool, bytes_per_row: u64) -> Self {
        let bar = ProgressBar::hidden();
        if !quiet && std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Bars { bar, bytes_per_row }
    }
}

impl Progress for Bars {
    fn begin(&self, phase: &str, rows: u64) {
        self.bar.reset();
        self.bar.set_length(rows);
        self.bar.set_position(0);
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {human_pos}/{human_len} rows  {per_sec}  {msg}  ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_prefix(phase.to_string());
    }

    fn advance(&self, rows: u64) {
        self.bar.inc(rows);
        let secs = self.bar.elapsed().as_secs_f64().max(1e-9);
        let mb = (self.bar.position() * self.bytes_per_row) as f64 / 1e6 / secs;
        self.bar.set_message(format!("{mb:.0} MB/s"));
    }

    fn end(&self) {
        self.bar.finish_and_clear();
    }
}
