//! A TCP relay between a NATS client and its server that can lose a delivery on the way, the
//! way a NATS node that dies loses what it was passing on: armed with a pattern, it cuts the
//! client's connection the moment the pattern appears in what the server sends, without
//! forwarding that chunk. The server has written the message (for a JetStream consumer: counted
//! it as delivered), the client never sees it, reconnects through the relay and carries on.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the relay shares with its connections.
#[derive(Debug, Default)]
struct Trap {
    /// Cut the connection that carries this, once.
    armed: Option<Vec<u8>>,
    /// How many connections were cut so far.
    cuts: usize,
}

impl Trap {
    /// Whether `chunk` springs the trap (which then disarms).
    fn springs(&mut self, chunk: &[u8]) -> bool {
        let Some(pattern) = &self.armed else {
            return false;
        };
        if pattern.is_empty()
            || !chunk
                .windows(pattern.len())
                .any(|w| w == pattern.as_slice())
        {
            return false;
        }
        self.armed = None;
        self.cuts += 1;
        true
    }
}

/// A relay on a loopback port to one NATS server; stops when dropped.
pub struct DeliveryCutter {
    port: u16,
    trap: Arc<Mutex<Trap>>,
    accepting: JoinHandle<()>,
}

impl DeliveryCutter {
    /// Relays every connection to `127.0.0.1:upstream_port`.
    pub async fn start(upstream_port: u16) -> Result<DeliveryCutter> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the relay")?;
        let port = listener.local_addr().context("relay address")?.port();
        let trap = Arc::new(Mutex::new(Trap::default()));
        let accepting = tokio::spawn(accept(listener, upstream_port, trap.clone()));
        Ok(DeliveryCutter {
            port,
            trap,
            accepting,
        })
    }

    /// The URL clients connect to instead of the server's.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Cuts the next connection whose server sends `pattern` (that chunk is not forwarded).
    pub fn arm(&self, pattern: &[u8]) {
        self.lock().armed = Some(pattern.to_vec());
    }

    /// How many connections were cut.
    pub fn cuts(&self) -> usize {
        self.lock().cuts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Trap> {
        self.trap.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for DeliveryCutter {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, upstream_port: u16, trap: Arc<Mutex<Trap>>) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
            continue; // the client sees its connection closed and tries again
        };
        tokio::spawn(relay(client, server, trap.clone()));
    }
}

/// Pumps both ways until either side closes or the trap springs; then both sides are closed.
async fn relay(client: TcpStream, server: TcpStream, trap: Arc<Mutex<Trap>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            let chunk = &buffer[..read];
            if trap
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .springs(chunk)
            {
                return;
            }
            if client_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    // Whichever ends first ends the relay; dropping the halves closes both connections.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trap_springs_once_on_its_pattern() {
        let mut trap = Trap::default();
        assert!(!trap.springs(b"anything"), "not armed");
        trap.armed = Some(b"#7".to_vec());
        assert!(!trap.springs(b"conversation #6"));
        assert!(trap.springs(b"MSG ... conversation #7 ..."));
        assert!(
            !trap.springs(b"conversation #7"),
            "disarmed after springing"
        );
        assert_eq!(trap.cuts, 1);
    }
}
