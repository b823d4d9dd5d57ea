//! The session's I/O, kept out of the actor (style §3.5: no I/O inside `handle`):
//!
//! - [`connect`]: TCP (TCP_NODELAY) and optionally TLS, bounded by the connect timeout.
//! - the reader task: `FramedRead<_, SmppCodec>`; each decoded item is cast to the actor as
//!   `PduReceived` together with a permit of a small semaphore, so at most [`READ_AHEAD_PDUS`]
//!   PDUs wait in the (unbounded) ractor mailbox; when the actor falls behind, the reader stops
//!   reading and TCP pushes back on the SMSC.
//! - the writer task: a bounded `mpsc` drained into `FramedWrite`; it `feed`s every command
//!   queued and `flush`es only when the queue is momentarily empty, so a burst is one write.
//!   It counts the requests it has handed to the socket ([`Link::abort`] returns the count), which
//!   is how a dying session tells "written, maybe received" (in doubt) from "never written".

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{SinkExt, StreamExt};
use sairex_pdu::{CodecError, Command, SmppCodec};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::debug;

use super::config::SessionConfig;
use super::{DisconnectReason, Inner, SessionRef, internal};

/// Most PDUs read ahead of the actor: a bound on what the reader can put in the mailbox.
pub const READ_AHEAD_PDUS: usize = 256;

/// Slack in the writer queue beyond the window and the read-ahead, for bind, enquire_link and
/// unbind.
const WRITE_QUEUE_SLACK: usize = 8;

/// How long a graceful close may take to flush what is queued and shut the write half.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An established connection, before its tasks start.
pub(crate) enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large and this is built once per connection).
    Tls(Box<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp(_) => "Transport::Tcp",
            Self::Tls(_) => "Transport::Tls",
        })
    }
}

/// Connects to the SMSC of `config`, with TLS when `tls` is given.
///
/// # Errors
/// The connect, handshake or timeout error.
pub(crate) async fn connect(
    config: &SessionConfig,
    tls: Option<TlsConnector>,
) -> io::Result<Transport> {
    let attempt = async {
        let tcp = TcpStream::connect((config.host.as_str(), config.port)).await?;
        // submit_sm and its response are small and latency-bound; batching is the writer's job.
        tcp.set_nodelay(true)?;
        match tls {
            None => Ok(Transport::Tcp(tcp)),
            Some(connector) => {
                let name = config
                    .server_name()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let stream = connector.connect(name, tcp).await?;
                Ok(Transport::Tls(Box::new(stream)))
            }
        }
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// A command could not be queued for the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotQueued;

/// The running reader and writer of one connection, as the actor holds it.
#[derive(Debug)]
pub(crate) struct Link {
    tx: Option<mpsc::Sender<Command>>,
    written: Arc<AtomicU64>,
    reader: JoinHandle<()>,
    writer: Option<JoinHandle<()>>,
}

impl Link {
    /// Queues `command` for the writer without waiting.
    ///
    /// # Errors
    /// [`NotQueued`] when the queue is full (the peer is not reading) or the writer has
    /// stopped: the command was not written, and is dropped.
    pub(crate) fn send(&self, command: Command) -> Result<(), NotQueued> {
        match &self.tx {
            Some(tx) => tx.try_send(command).map_err(|_| NotQueued),
            None => Err(NotQueued),
        }
    }

    /// A handle that queues on the writer while the link lives, and does not keep it alive
    /// (the deliver_sm_resp that follows an ack).
    pub(crate) fn writer(&self) -> Option<mpsc::WeakSender<Command>> {
        self.tx.as_ref().map(mpsc::Sender::downgrade)
    }

    /// Stops both tasks at once and returns how many requests the writer handed to the socket
    /// on this connection: the first that many requests queued may have reached the SMSC, the
    /// rest certainly did not.
    pub(crate) async fn abort(mut self) -> u64 {
        self.tx = None;
        self.reader.abort();
        if let Some(writer) = self.writer.take() {
            writer.abort();
            // Cancellation completes at the writer's next await point; no I/O is waited for.
            let _ = writer.await;
        }
        self.written.load(Ordering::Acquire)
    }

    /// Closes gracefully: the writer writes and flushes everything already queued, then shuts
    /// the write half (TCP FIN / TLS close_notify) within [`CLOSE_TIMEOUT`]; reading stops now.
    pub(crate) fn close(mut self) {
        self.tx = None;
        // Detach: the writer ends by itself once its queue is empty.
        self.writer = None;
        self.reader.abort();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}

/// Starts the reader and writer of connection `conn` over `transport`.
pub(crate) fn spawn_link(
    transport: Transport,
    actor: SessionRef,
    conn: u64,
    config: &SessionConfig,
) -> Link {
    match transport {
        Transport::Tcp(s) => spawn_tasks(s, actor, conn, config),
        Transport::Tls(s) => spawn_tasks(*s, actor, conn, config),
    }
}

fn spawn_tasks<S>(stream: S, actor: SessionRef, conn: u64, config: &SessionConfig) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let codec = SmppCodec::with_max_command_length(config.max_command_length);
    let capacity = config.window_len() + READ_AHEAD_PDUS + WRITE_QUEUE_SLACK;
    let (tx, rx) = mpsc::channel(capacity);
    let written = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(read_loop(
        FramedRead::new(read_half, codec),
        actor.clone(),
        conn,
    ));
    let writer = tokio::spawn(write_loop(
        FramedWrite::new(write_half, codec),
        rx,
        actor,
        conn,
        Arc::clone(&written),
    ));
    Link {
        tx: Some(tx),
        written,
        reader,
        writer: Some(writer),
    }
}

fn lost(actor: &SessionRef, conn: u64, reason: DisconnectReason) {
    // The actor being gone is fine: nobody is left to tell.
    let _ = actor.cast(internal(Inner::ConnectionLost { conn, reason }));
}

async fn read_loop<R>(mut frames: FramedRead<R, SmppCodec>, actor: SessionRef, conn: u64)
where
    R: AsyncRead + Unpin,
{
    let permits = Arc::new(Semaphore::new(READ_AHEAD_PDUS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        match frames.next().await {
            Some(Ok(item)) => {
                let msg = internal(Inner::PduReceived { conn, item, permit });
                if actor.cast(msg).is_err() {
                    return;
                }
            }
            Some(Err(CodecError::Frame(error))) => {
                debug!(target: "sairex::engine::session", conn, %error, "corrupt framing");
                return lost(&actor, conn, DisconnectReason::CorruptFraming);
            }
            Some(Err(CodecError::Io(error))) => {
                debug!(target: "sairex::engine::session", conn, %error, "read failed");
                return lost(&actor, conn, DisconnectReason::Io(error.kind()));
            }
            Some(Err(error)) => {
                debug!(target: "sairex::engine::session", conn, %error, "read failed");
                return lost(&actor, conn, DisconnectReason::Io(io::ErrorKind::Other));
            }
            None => return lost(&actor, conn, DisconnectReason::ClosedByPeer),
        }
    }
}

async fn write_loop<W>(
    mut sink: FramedWrite<W, SmppCodec>,
    mut rx: mpsc::Receiver<Command>,
    actor: SessionRef,
    conn: u64,
    written: Arc<AtomicU64>,
) where
    W: AsyncWrite + Unpin,
{
    let result: Result<(), CodecError> = async {
        while let Some(command) = rx.recv().await {
            feed(&mut sink, command, &written).await?;
            while let Ok(command) = rx.try_recv() {
                feed(&mut sink, command, &written).await?;
            }
            sink.flush().await?;
        }
        Ok(())
    }
    .await;
    match result {
        // The actor closed the queue: a graceful close.
        Ok(()) => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
        }
        Err(error) => {
            debug!(target: "sairex::engine::session", conn, %error, "write failed");
            let kind = match error {
                CodecError::Io(e) => e.kind(),
                _ => io::ErrorKind::InvalidData,
            };
            lost(&actor, conn, DisconnectReason::Io(kind));
        }
    }
}

async fn feed<W>(
    sink: &mut FramedWrite<W, SmppCodec>,
    command: Command,
    written: &AtomicU64,
) -> Result<(), CodecError>
where
    W: AsyncWrite + Unpin,
{
    // Counted before the write: a request partly written may have reached the SMSC, and calling
    // it in doubt is the safe side (never "not sent" for something that might have been).
    if command.expects_response() {
        written.fetch_add(1, Ordering::Release);
    }
    sink.feed(command).await
}
