//! How florence2-proxy and nvcf-emulator run as processes: bind, catch signals, announce the
//! address on the first stdout line (test harnesses read the port from it), log to stderr.

mod logging;
mod shutdown;

use std::io::{self, Write};
use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use logging::init_logging;
pub use shutdown::{Shutdown, staged_signals};

/// Binds `addr` (port 0: any free port), registers for SIGTERM and Ctrl-C, then prints
/// `listening on http://IP:PORT` and flushes — in that order, so a harness that stops the
/// process as soon as it reads the line stops it gracefully.
pub async fn listen(addr: SocketAddr) -> io::Result<(TcpListener, Shutdown)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let shutdown = Shutdown::on_signals();
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on http://{local}")?;
    stdout.flush()?;
    Ok((listener, shutdown))
}

/// Like [`listen`], with both the first signal (stop gracefully) and the second (stop now).
pub async fn listen_staged(addr: SocketAddr) -> io::Result<(TcpListener, Shutdown, Shutdown)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (first, second) = staged_signals();
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on http://{local}")?;
    stdout.flush()?;
    Ok((listener, first, second))
}
