//! Test guest: every `analyze` prints 1 MiB to stdout and 1 MiB to stderr
//! (1024 lines of 1023 characters plus a newline, via `println!`/`eprintln!`)
//! and calls the host `log` 10000 times, then returns an empty output. The host
//! must keep only a bounded share of all that.

use pyrometer::plugin::host::{Level, log};

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

const LINES: usize = 1024;
const LINE_CHARS: usize = 1023;
const LOG_CALLS: usize = 10_000;

struct Chatty;

impl Guest for Chatty {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn analyze(_batch: Batch) -> Result<Output, String> {
        let out_line = "o".repeat(LINE_CHARS);
        let err_line = "e".repeat(LINE_CHARS);
        for _ in 0..LINES {
            println!("{out_line}");
            eprintln!("{err_line}");
        }
        for i in 0..LOG_CALLS {
            log(Level::Info, &format!("chatty log line {i}"));
        }
        Ok(Output {
            metrics: Vec::new(),
            findings: Vec::new(),
        })
    }
}

export!(Chatty);
