//! Calls into dependencies that can panic on malformed input (arrow-ipc panics with
//! `not implemented` on a corrupt Arrow schema embedded in a Parquet footer): [`guard`] turns
//! such a panic into an error, and with [`install_quiet_hook`] (the CLI installs it) the
//! panic prints nothing, so the user sees one error naming the file.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// Set while a guarded call runs on this thread.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic inside it becomes `Err(message)`.
pub fn guard<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let was = GUARDED.with(|g| g.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a dependency panicked".into())
    })
}

/// Wraps the panic hook so that panics inside [`guard`] print nothing (others still do).
pub fn install_quiet_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(|g| g.get()) {
            previous(info)
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_nesting_restores_the_flag() {
        assert_eq!(guard(|| 7), Ok(7));
        let e = guard(|| -> u8 { panic!("not implemented: Type <UNKNOWN 175>") }).unwrap_err();
        assert!(e.contains("UNKNOWN 175"), "{e}");
        let inner = guard(|| guard(|| -> u8 { panic!("inner") }).unwrap_err()).unwrap();
        assert_eq!(inner, "inner");
        assert!(!GUARDED.with(|g| g.get()));
    }
}
