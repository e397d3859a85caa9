//! Build-time only: see Cargo.toml. No code.
