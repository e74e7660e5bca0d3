//! The fuzz corpus on every `cargo test`: each file in `fuzz/seeds/<target>/` (a small seed
//! corpus) and `fuzz/regressions/<target>/` (inputs that once crashed a target, kept after the
//! fix) goes through the same entry function as the cargo-fuzz target (`fuzz/entries.rs`), on a
//! thread with a tokio worker's 2 MiB stack, and must not panic.

#[path = "../../fuzz/entries.rs"]
mod entries;

use super::support::repo;

#[test]
fn fuzz_seeds_and_regressions_do_not_panic() {
    let mut failures = Vec::new();
    for (target, run) in entries::TARGETS {
        let mut seeds = 0;
        for kind in ["seeds", "regressions"] {
            let dir = repo().join("fuzz").join(kind).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::thread::Builder::new()
                    .stack_size(2 * 1024 * 1024)
                    .spawn(move || run(&data))
                    .unwrap()
                    .join();
                if outcome.is_err() {
                    failures.push(path.display().to_string());
                }
                seeds += usize::from(kind == "seeds");
            }
        }
        assert!(seeds > 0, "no seeds for fuzz target {target}");
    }
    assert!(failures.is_empty(), "panicked on: {failures:#?}");
}
