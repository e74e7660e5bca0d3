//! The `poortwachter` binary: parse the command line, run the command, set the exit code.
#![forbid(unsafe_code)]

fn main() {
    match poortwachter::cli::run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
