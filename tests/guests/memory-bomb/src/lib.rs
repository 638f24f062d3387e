//! Test guest: `analyze` allocates 1 MiB chunks, touches and keeps them, forever,
//! so the host's memory limit must stop it (a trap on the failed `memory.grow`,
//! or an allocation failure that aborts).

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

const CHUNK_BYTES: usize = 1 << 20;
const PAGE_BYTES: usize = 4096;

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn analyze(_batch: Batch) -> Result<Output, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            // Write one byte per page so the host really commits the memory.
            for byte in chunk.iter_mut().step_by(PAGE_BYTES) {
                *byte = 1;
            }
            hoard.push(core::hint::black_box(chunk));
        }
    }
}

export!(MemoryBomb);
