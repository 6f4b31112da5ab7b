//! `prophasis-agent`: the lean daemon on every monitored host.

fn main() {
    println!("prophasis-agent {}", env!("CARGO_PKG_VERSION"));
}
