//! Repository checks that are not unit tests of any one crate.

fn main() {}
