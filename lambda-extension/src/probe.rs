//! The probe's socket, read by a dedicated thread: it blocks on the socket
//! and forwards each decoded message into the loop's [`Input`] channel, so
//! the probe's end-of-invocation record wakes the loop the moment it lands.

use std::io;
use std::path::Path;
use std::sync::mpsc::SyncSender;

use pyrometer::sources::probe_socket::ProbeSocket;

use crate::inputs::Input;

/// Binds `path` and starts the reader thread; it ends when the loop is gone.
pub(crate) fn start(path: &Path, inputs: SyncSender<Input>) -> io::Result<()> {
    let mut socket = ProbeSocket::bind(path)?;
    socket.set_blocking(true)?;
    std::thread::Builder::new()
        .name("pyrometer-probe".into())
        .spawn(move || {
            loop {
                let input = match socket.recv() {
                    Ok(Ok(Some(message))) => Input::Probe(Box::new(message)),
                    // A chunk of a profile not complete yet.
                    Ok(Ok(None)) => continue,
                    Ok(Err(reason)) => Input::ProbeRejected(reason),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                if inputs.send(input).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}
