//! Test guest: `analyze` opens a TCP connection to 127.0.0.1:9, which makes the
//! component import `wasi:sockets` interfaces. pyrometer grants plugins no
//! network, so instantiating this component must fail at link time.

use pyrometer::plugin::types::{Finding, Severity};

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

struct NetClient;

impl Guest for NetClient {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn analyze(_batch: Batch) -> Result<Output, String> {
        match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => Ok(Output {
                metrics: Vec::new(),
                findings: vec![Finding {
                    rule: "net-client".into(),
                    severity: Severity::Critical,
                    message: "connected to 127.0.0.1:9: the sandbox has network access".into(),
                    labels: Vec::new(),
                }],
            }),
            Err(e) => Err(format!("connect to 127.0.0.1:9 failed: {e}")),
        }
    }
}

export!(NetClient);
