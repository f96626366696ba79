//! The local runtime's HTTP listener. hyper answers a request it cannot parse by itself,
//! before any router sees it: a URI over 64 KiB (414), a head over its buffer or with
//! more than 100 headers (431), a malformed request line or header (400), each with an
//! empty body. So every connection's writes pass through [`ErrorShape`], which gives
//! those automatic answers the API's JSON error shape. (On AWS, API Gateway answers
//! such requests itself, with its own body.)

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections are [`ErrorShape`]d.
pub struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = ErrorShape<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (ErrorShape::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose automatic error answers (see the module) carry the error shape.
pub struct ErrorShape<T> {
    inner: T,
    /// A rewritten answer still to be written, and how much of it has been.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ErrorShape<T> {
    pub fn new(inner: T) -> ErrorShape<T> {
        ErrorShape {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The status of a write that is one of hyper's automatic answers: a bare head (no
/// body, no content type) with one of the statuses hyper sends for a request it could
/// not parse. Hookline's own answers always carry a JSON body.
fn automatic(buf: &[u8]) -> Option<u16> {
    let head = std::str::from_utf8(buf).ok()?;
    let status: u16 = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let lower = head.to_ascii_lowercase();
    let bare = head.ends_with("\r\n\r\n")
        && lower.contains("\r\ncontent-length: 0\r\n")
        && !lower.contains("\r\ncontent-type:");
    (bare && matches!(status, 400 | 414 | 431)).then_some(status)
}

/// The answer hyper's automatic one is replaced with.
fn shaped(status: u16) -> Vec<u8> {
    let (reason, code, message) = match status {
        414 => (
            "URI Too Long",
            "uri_too_long",
            "the request URI is longer than 64 KiB",
        ),
        431 => (
            "Request Header Fields Too Large",
            "headers_too_large",
            "the request's headers are too large, or more than 100",
        ),
        _ => (
            "Bad Request",
            "malformed_request",
            "the request is not valid HTTP/1.1",
        ),
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl<T: AsyncWrite + Unpin> ErrorShape<T> {
    /// Writes what is pending before anything else.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorShape<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorShape<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if let Some(status) = automatic(buf) {
            self.pending = shaped(status);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_answers_are_rewritten() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\n";
        assert_eq!(automatic(bare), Some(431));
        assert_eq!(
            automatic(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n"),
            Some(414)
        );
        // Hookline's own answers have a body and a content type.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic(ours), None);
        assert_eq!(
            automatic(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(automatic(b"{\"error\":1}"), None);
        let answer = String::from_utf8(shaped(431)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "headers_too_large");
    }
}
