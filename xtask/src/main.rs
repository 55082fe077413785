//! `cargo xtask`: set-up, build, lab, test and bench.
fn main() {}
