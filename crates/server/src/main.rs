//! `prophasis`: the server and admin CLI in one binary.

fn main() {
    println!("prophasis {}", env!("CARGO_PKG_VERSION"));
}
