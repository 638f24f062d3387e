//! Test guest: `configure` fails with `threshold must be a number, got '<value>'`
//! when config key `threshold` is not a number; any other configuration is
//! accepted, and `analyze` returns an empty output.

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

struct RejectsConfig;

impl Guest for RejectsConfig {
    fn configure(config: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in &config {
            if key == "threshold" && value.parse::<f64>().is_err() {
                return Err(format!("threshold must be a number, got '{value}'"));
            }
        }
        Ok(())
    }

    fn analyze(_batch: Batch) -> Result<Output, String> {
        Ok(Output {
            metrics: Vec::new(),
            findings: Vec::new(),
        })
    }
}

export!(RejectsConfig);
