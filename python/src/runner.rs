//! Runs long work off the GIL: the calling thread waits in slices of 100 ms, and between
//! slices reports progress to a Python callback and checks for signals. On Ctrl-C (or any
//! exception a signal handler raises) the work is cancelled the way the CLI cancels it: its
//! future is dropped, so an output written through the core's atomic writers is never
//! renamed into place, and the call returns only after the cancellation has completed.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use embquant::job::Progress;
use pyo3::prelude::*;

use pyo3::exceptions::PyRuntimeError;

use crate::errors::to_py;

/// The runtime every job and table function of the module runs on.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("embquant")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Progress of the job: the running phase (name, rows done, rows in all) and the phases
/// that ended since the last report (each reported once more, complete, so a phase shorter
/// than one polling interval is still seen).
#[derive(Debug, Default)]
pub(crate) struct Shared(Mutex<State>);

#[derive(Debug, Default)]
pub(crate) struct State {
    now: (String, u64, u64),
    ended: Vec<(String, u64, u64)>,
}

impl Progress for Shared {
    fn begin(&self, phase: &str, rows: u64) {
        self.0.lock().expect("progress lock").now = (phase.to_string(), 0, rows);
    }
    fn advance(&self, rows: u64) {
        self.0.lock().expect("progress lock").now.1 += rows;
    }
    fn end(&self) {
        let mut s = self.0.lock().expect("progress lock");
        let (phase, done, total) = std::mem::take(&mut s.now);
        if !phase.is_empty() {
            s.ended.push((phase, done.max(total), total));
        }
    }
}

/// Calls `callback(phase, done, total)` for every phase that ended since the last call,
/// then for the running one when it changed since `last`.
fn report(
    callback: Option<&Bound<'_, PyAny>>,
    shared: &Shared,
    last: &mut (String, u64, u64),
) -> PyResult<()> {
    let Some(cb) = callback else { return Ok(()) };
    let (ended, now) = {
        let mut s = shared.0.lock().expect("progress lock");
        (std::mem::take(&mut s.ended), s.now.clone())
    };
    for (phase, done, total) in ended {
        cb.call1((phase.as_str(), done, total))?;
    }
    if now != *last && !now.0.is_empty() {
        cb.call1((now.0.as_str(), now.1, now.2))?;
        *last = now;
    }
    Ok(())
}

/// Runs `work` (built with the progress sink) on the module's runtime until it completes,
/// Ctrl-C arrives, or the progress callback raises. The job's future need not be `Send`
/// (the core's are not): it runs on one blocking thread of the runtime under `block_on`,
/// raced against a cancellation signal that drops it.
pub(crate) fn run<T, F>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce(Arc<Shared>) -> F + Send + 'static,
) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = embquant::Result<T>> + 'static,
{
    let rt = runtime();
    let shared = Arc::new(Shared::default());
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let (sink, handle) = (Arc::clone(&shared), rt.handle().clone());
    let mut task = rt.spawn_blocking(move || {
        handle.block_on(async move {
            tokio::select! {
                out = work(sink) => Some(out),
                _ = cancelled => None,
            }
        })
    });
    let mut last = (String::new(), 0, 0);
    loop {
        let waited = py.detach(|| {
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut task).await })
        });
        if let Ok(joined) = waited {
            let out = joined
                .map_err(|e| PyRuntimeError::new_err(format!("the job failed: {e}")))?
                .ok_or_else(|| PyRuntimeError::new_err("the job was cancelled"))?;
            let out = out.map_err(to_py)?;
            report(progress, &shared, &mut last)?;
            return Ok(out);
        }
        let checked = py
            .check_signals()
            .and_then(|_| report(progress, &shared, &mut last));
        if let Err(e) = checked {
            // Drop the job's future, and return only once it is dropped (its outputs
            // cleaned up, as when the CLI is interrupted).
            let _ = cancel.send(());
            py.detach(|| {
                rt.block_on(async {
                    let _ = (&mut task).await;
                })
            });
            tracing::info!("job cancelled: {e}");
            return Err(e);
        }
    }
}

/// Runs blocking `work` on the runtime's blocking pool under [`run`] (Ctrl-C returns at
/// once; the work's result is discarded when it finishes).
pub(crate) fn run_blocking<T: Send + 'static>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce(Arc<Shared>) -> embquant::Result<T> + Send + 'static,
) -> PyResult<T> {
    run(py, progress, move |shared| async move {
        tokio::task::spawn_blocking(move || work(shared))
            .await
            .map_err(|e| embquant::Error::Internal(format!("a worker thread failed: {e}")))?
    })
}
