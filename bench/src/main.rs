//! `yadtq-bench`: benchmarks on the real stack. See docs/benchmarks.md.

fn main() {
    println!("yadtq-bench: scenarios are being written");
}
