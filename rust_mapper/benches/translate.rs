//! `cargo bench` micro-benchmark: translate one document many times (no criterion, to keep CI builds small).
//!
//! Inputs: `RB_BENCH_DIR` with `spec.json`, `input.bin` and optionally `desc.bin` (defaults to the golden case
//! `tests/mapping/cases/ops/return_authorization/compiled` and `cases/ops/descriptors.bin`).

use std::path::PathBuf;
use std::time::Instant;

/// The host API's dynamic-value messages (the engine is told their names; it does not know them).
fn dynamic() -> rust_mapper::DynamicTypes {
    rust_mapper::DynamicTypes::new(
        "returnbridge.api.v1.CustomValue",
        "returnbridge.api.v1.CustomList",
        "returnbridge.api.v1.CustomStruct",
    )
}

fn main() {
    let dir = std::env::var_os("RB_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/mapping/cases/ops/return_authorization/compiled")
    });
    let read =
        |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
    let desc = std::fs::read(dir.join("desc.bin"))
        .or_else(|_| std::fs::read(dir.join("../../descriptors.bin")))
        .expect("descriptors");
    let prog = rust_mapper::compile(&read("spec.json"), &desc, &dynamic()).expect("spec compiles");
    let input = read("input.bin");
    let iters: u32 = std::env::var("RB_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let mut bytes = 0usize;
    for _ in 0..1000 {
        bytes += prog.translate(&input).map(|o| o.len()).unwrap_or(0);
    }
    let start = Instant::now();
    for _ in 0..iters {
        bytes += prog.translate(&input).map(|o| o.len()).unwrap_or(0);
    }
    let per = start.elapsed().as_secs_f64() / iters as f64;
    println!("translate: {:.2} us/doc ({} output bytes)", per * 1e6, bytes / (iters as usize + 1000));
    if let Some(m) = prog.input_msg {
        let start = Instant::now();
        let mut n = 0usize;
        for _ in 0..iters {
            n += usize::from(prog.schema.decode(m, &input).is_ok());
        }
        let per = start.elapsed().as_secs_f64() / iters as f64;
        println!("decode only: {:.2} us/doc ({n} ok)", per * 1e6);
    }
}
