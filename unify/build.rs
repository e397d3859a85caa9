//! Empty: the build-dependencies above exist only for their features (see Cargo.toml).
fn main() {}
