//! A subscriber that stops reading its stream, to test and measure that it holds back nobody.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::sse::EVENT_TIMEOUT;

/// A raw HTTP/1.1 client of a session's stream that reads the response head and the first event
/// (so the server has subscribed it), then nothing until told to.
///
/// Its receive buffer is the smallest Linux allows, and so is its MSS, which keeps the server's
/// send buffer for the connection small too: Linux sizes that from the peer's MSS, to about
/// 110 KB instead of up to 4 MB (`tcp_wmem`) on loopback. About 130 events then fill the
/// connection, after which the server cannot write to it.
pub struct StalledSubscriber {
    socket: TcpStream,
    received: Vec<u8>,
}

impl StalledSubscriber {
    /// Subscribes to `stream_url` on the server at `address` with `token`.
    pub async fn open(address: SocketAddr, token: &str, stream_url: &str) -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(1).expect("SO_RCVBUF");
        set_mss(&socket, 536);
        let mut socket = socket.connect(address).await.expect("the server accepts");
        let request = format!(
            "GET {stream_url} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.expect("the request is sent");
        let mut subscriber = Self { socket, received: Vec::new() };
        subscriber.read_until("event: qr").await;
        subscriber
    }

    /// Reads until `marker` has arrived (each read within [`EVENT_TIMEOUT`]).
    pub async fn read_until(&mut self, marker: &str) {
        while !String::from_utf8_lossy(&self.received).contains(marker) {
            let mut buffer = [0; 16 * 1024];
            let read = tokio::time::timeout(EVENT_TIMEOUT, self.socket.read(&mut buffer));
            let read = read.await.expect("the server writes again").expect("a read");
            assert!(read > 0, "the server keeps the connection");
            self.received.extend_from_slice(&buffer[..read]);
        }
    }

    /// The ids of the events received so far (the body is chunked, one chunk per event, so each
    /// `id:` line is whole).
    pub fn ids(&self) -> Vec<u64> {
        let received = String::from_utf8_lossy(&self.received);
        received.lines().filter_map(|line| line.strip_prefix("id: ")?.parse().ok()).collect()
    }
}

/// Sets `TCP_MAXSEG` (before connecting: the MSS this end announces).
fn set_mss(socket: &TcpSocket, mss: libc::c_int) {
    use std::os::fd::AsRawFd;
    let size = libc::socklen_t::try_from(size_of::<libc::c_int>()).expect("a small size");
    // SAFETY: setsockopt reads `size` bytes from `mss`, a live local of that size, and only
    // changes the socket, which the caller owns.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&raw const mss).cast(),
            size,
        )
    };
    assert_eq!(set, 0, "TCP_MAXSEG: {}", std::io::Error::last_os_error());
}
