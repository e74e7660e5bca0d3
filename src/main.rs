//! The `poortwachter` binary: parse the command line, run the command, set the exit code.
#![forbid(unsafe_code)]

/// mimalloc: the proxy and the JSON-LD code allocate a lot of small objects; it is measurably
/// faster than the system allocator here (see ARCHITECTURE.md, benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    match poortwachter::cli::run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
