//! CPU work from async code: a closure run on the rayon pool, awaited without blocking the
//! runtime (feature `job`).

use crate::error::{Error, Result};

/// Runs `f` on the rayon pool and awaits its result without blocking the async runtime.
pub async fn spawn_rayon<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .map_err(|_| Error::Internal("a rayon task panicked".into()))
}
