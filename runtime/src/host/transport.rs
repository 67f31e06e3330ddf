//! Sending one outbound request to addresses the policy already vetted.
//!
//! This replaces `wasmtime_wasi_http::default_send_request`, which takes the request's authority
//! and lets `TcpStream::connect` resolve it again: an answer that changed since the check (DNS
//! rebinding) would then reach an address nobody vetted. Here the TCP connection goes to the given
//! socket addresses only; the host name is used for TLS (SNI and certificate checks) and, through
//! the `Host` header the request already carries, by the server. Otherwise the exchange matches
//! the default: rustls with the webpki roots for `https`, HTTP/1.1 through hyper, and the connect,
//! first-byte and between-bytes timeouts.

use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// The timeouts of one exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// TCP connect plus the TLS and HTTP handshakes.
    pub(crate) connect: Duration,
    /// From sending the request to the response head.
    pub(crate) first_byte: Duration,
    /// Between two frames of the response body.
    pub(crate) between_bytes: Duration,
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// The future that drives the connection after the response head has arrived.
pub(crate) type ConnectionIo = Pin<Box<dyn Future<Output = Result<(), HttpError>> + Send>>;

/// Sends `request` over a new connection to one of `addresses`, with TLS for `host` when `tls`.
///
/// # Errors
/// The `wasi:http` error for the phase that failed: connect, TLS, handshake or response.
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    addresses: &[SocketAddr],
    host: &str,
    tls: bool,
    timeouts: Timeouts,
) -> Result<(http::Response<WasiBody>, ConnectionIo), HttpError> {
    let stream = tokio::time::timeout(timeouts.connect, connect(addresses, host, tls))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let (mut sender, conn) =
        tokio::time::timeout(timeouts.connect, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;

    // Origin form on the wire: scheme and authority belong in the request line only for proxies.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() =
        http::Uri::builder().path_and_query(path).build().map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let first_byte = timeouts.first_byte;
    let mut send = pin!(async move {
        tokio::time::timeout(first_byte, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(HttpError::from)
    });
    // Drive the connection while waiting for the response head, as the default sender does.
    let mut conn = Some(conn);
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(driver) = conn.as_mut() else { return Poll::Pending };
            let ended = ready!(Pin::new(driver).poll(cx));
            conn = None;
            match ended {
                Ok(()) => send.as_mut().poll(cx),
                Err(err) => Poll::Ready(Err(HttpError::from(err))),
            }
        }
    })
    .await?;

    // Tokio panics on a zero interval; a nanosecond is as good as zero.
    let mut between_bytes = tokio::time::interval(timeouts.between_bytes.max(Duration::from_nanos(1)));
    between_bytes.reset();
    let response = response.map(|incoming| TimedBody { incoming, between_bytes }.boxed_unsync());
    let io: ConnectionIo = Box::pin(async move {
        let Some(conn) = conn else { return Ok(()) };
        conn.await.map_err(|err| if err.is_timeout() { HttpError::HttpResponseTimeout } else { err.into() })
    });
    Ok((response, io))
}

/// A TCP connection to the first of `addresses` that accepts, wrapped in TLS for `host` if asked.
async fn connect(addresses: &[SocketAddr], host: &str, tls: bool) -> Result<Box<dyn Stream>, HttpError> {
    let tcp = TcpStream::connect(addresses).await.map_err(HttpError::Connect)?;
    if !tls {
        return Ok(Box::new(tcp));
    }
    let server_name = match host.parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_owned())?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| HttpError::InternalError(Some(err.to_string())))?
        .with_root_certificates(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() })
        .with_no_client_auth();
    let stream =
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name, tcp).await.map_err(HttpError::Tls)?;
    Ok(Box::new(stream))
}

/// A response body that fails when no frame arrives within the between-bytes timeout.
struct TimedBody {
    incoming: Incoming,
    between_bytes: tokio::time::Interval,
}

impl Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) => {
                Poll::Ready(Some(Err(if err.is_timeout() { HttpError::HttpResponseTimeout } else { err.into() })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.between_bytes.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.between_bytes.poll_tick(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
