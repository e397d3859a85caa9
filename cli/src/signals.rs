//! Termination signals: SIGINT (Ctrl-C), SIGTERM (`kill`, systemd, docker stop) and SIGHUP
//! (a closed terminal) all cancel the running command the same way.

/// Resolves with the signal's name when one of them arrives.
#[cfg(unix)]
pub async fn terminated() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        // Cannot listen for SIGTERM/SIGHUP: at least honour Ctrl-C.
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

/// Resolves with the signal's name when Ctrl-C arrives.
#[cfg(not(unix))]
pub async fn terminated() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

/// A flag that blocking work polls, set when the future that spawned it is dropped.
#[derive(Debug, Default)]
pub struct CancelOnDrop(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
