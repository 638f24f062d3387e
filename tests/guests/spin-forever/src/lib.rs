//! Test guest: `analyze` never returns, so the host's epoch deadline must stop it.

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

struct SpinForever;

impl Guest for SpinForever {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn analyze(_batch: Batch) -> Result<Output, String> {
        let mut turns: u64 = 0;
        // black_box keeps the optimizer from proving the loop useless.
        loop {
            turns = core::hint::black_box(turns.wrapping_add(1));
        }
    }
}

export!(SpinForever);
