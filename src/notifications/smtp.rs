//! SMTP delivery on connections we open ourselves, with `TCP_NODELAY`, kept for reuse.
//!
//! lettre speaks the protocol (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA, dot-stuffing, replies);
//! this module only opens the socket and keeps the connections. Why not lettre's own pooled
//! transport: it opens its sockets without `TCP_NODELAY` and writes a message's end (`.`) as
//! a second small write. Nagle's algorithm holds that write until the server acknowledges the
//! message, which a server delays by up to 40 ms (delayed ACK): about 23 messages a second
//! per connection, whatever the machine (`rightsflow bench outbox`, docs/PERFORMANCE.md).
//! lettre's async connection takes a stream we made (`connect_with_transport`), so we set the
//! option ourselves.
//!
//! The URL forms are lettre's (`smtp://`, `?tls=required|opportunistic`, `smtps://`,
//! credentials and the EHLO name in the URL), parsed here the way lettre parses them.
//!
//! Sending is blocking for the caller (the outbox's lanes are threads): each send runs on a
//! small runtime of this client's own, so it works from any thread that is not itself running
//! async code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::mail::MailError;

/// How the connection is protected, as the URL says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://host`: none.
    Plain,
    /// `smtp://host?tls=required`: STARTTLS, and fail without it.
    StartTlsRequired,
    /// `smtp://host?tls=opportunistic`: STARTTLS when offered.
    StartTlsOpportunistic,
    /// `smtps://host`: TLS from the first byte.
    Tls,
}

/// Where and how to deliver, from `RIGHTSFLOW_SMTP_URL`.
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl std::fmt::Debug for Server {
    // Without the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("authenticates", &self.credentials.is_some())
            .finish()
    }
}

impl Server {
    /// Parses an SMTP URL as lettre's `from_url` does (same schemes, `tls` values, default
    /// ports 25, 587 and 465, credentials percent-decoded, the path as the EHLO name).
    pub fn from_url(url: &str) -> Result<Server, MailError> {
        let bad = |why: String| MailError::Config(format!("RIGHTSFLOW_SMTP_URL: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| bad("no host".into()))?
            // An IPv6 literal comes bracketed; the socket wants it bare.
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (security, default_port) = match (parsed.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required")) => (Security::StartTlsRequired, 587),
            ("smtp", Some("opportunistic")) => (Security::StartTlsOpportunistic, 587),
            ("smtps", _) => (Security::Tls, 465),
            (scheme, tls) => {
                return Err(bad(format!(
                    "unknown scheme {scheme:?} or tls parameter {tls:?} (smtp://, smtp://…?tls=required, smtp://…?tls=opportunistic, smtps://)"
                )))
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|e| bad(e.to_string()))
        };
        let credentials = match parsed.password() {
            Some(password) => Some(Credentials::new(
                decode(parsed.username())?,
                decode(password)?,
            )),
            None => None,
        };
        let name = parsed.path().trim_matches('/');
        let hello = if name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(name.to_owned())
        };
        Ok(Server {
            host,
            port: parsed.port().unwrap_or(default_port),
            security,
            credentials,
            hello,
        })
    }
}

/// A connection waiting for its next message, and since when.
struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// Kept connections older than this are closed rather than reused: servers drop idle clients
/// (Postfix after 300 s), and a message sent on a dropped connection fails and waits for its
/// retry.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

pub struct SmtpClient {
    server: Server,
    timeout: Duration,
    /// At most this many connections are kept between messages (one per outbox lane).
    keep: usize,
    idle: Mutex<Vec<Idle>>,
    /// Made on the first send (a client that never sends starts no thread).
    runtime: std::sync::OnceLock<Runtime>,
    tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
}

impl SmtpClient {
    pub fn new(server: Server, keep: usize, timeout: Duration) -> SmtpClient {
        SmtpClient {
            server,
            timeout,
            keep: keep.max(1),
            idle: Mutex::new(Vec::new()),
            runtime: std::sync::OnceLock::new(),
            tls: std::sync::OnceLock::new(),
        }
    }

    /// Delivers one message (blocking). Every failure, a server's refusal included, is a
    /// `MailError::Send`, which the outbox retries with back-off and in the end parks for an
    /// admin (as with lettre's own transport before).
    pub fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), MailError> {
        let runtime = self.runtime.get_or_init(Runtime::new);
        runtime.block_on(self.deliver(envelope, message))
    }

    async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Result<(), MailError> {
        if let Some(kept) = self.take_idle() {
            match self.send_on(kept, envelope, message).await {
                // A kept connection the server closed meanwhile fails before any reply; the
                // message goes again at once on a new connection (at worst a second copy with
                // the same Message-ID, if the connection died after the server took it).
                Err(e) if e.is_network() => {
                    tracing::debug!("a kept SMTP connection was closed; sending on a new one")
                }
                done => return done.map_err(|e| e.into_mail_error(self.timeout)),
            }
        }
        let conn = self.connect().await?;
        self.send_on(conn, envelope, message)
            .await
            .map_err(|e| e.into_mail_error(self.timeout))
    }

    /// Sends on `conn` and keeps it for the next message if all went well (lettre closes a
    /// connection on any error).
    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), SendError> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, message)).await {
            Ok(Ok(_)) => {
                self.put_back(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(SendError::Smtp(e)),
            Err(_) => Err(SendError::TimedOut),
        }
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Newest last: reuse the most recently used, drop the stale.
        idle.retain(|i| i.since.elapsed() < IDLE_LIMIT);
        idle.pop().map(|i| i.conn)
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.keep {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let within = |what: &'static str| {
            move |_| MailError::Send(format!("{what}: no answer within the timeout"))
        };
        let failed = |what: &'static str| {
            move |e: lettre::transport::smtp::Error| MailError::Send(format!("{what}: {e}"))
        };
        let s = &self.server;
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((s.host.as_str(), s.port)))
            .await
            .map_err(within("connecting"))?
            .map_err(|e| MailError::Send(format!("connecting: {e}")))?;
        // The reason this module exists (see the top of the file).
        tcp.set_nodelay(true)
            .map_err(|e| MailError::Send(format!("TCP_NODELAY: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match s.security {
            Security::Tls => Box::new(self.wrap_tls(tcp).await?),
            _ => Box::new(tcp),
        };
        let mut conn = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(stream, &s.hello),
        )
        .await
        .map_err(within("greeting"))?
        .map_err(failed("greeting"))?;
        let starttls = match s.security {
            Security::StartTlsRequired => true,
            Security::StartTlsOpportunistic => conn.can_starttls(),
            Security::Plain | Security::Tls => false,
        };
        if starttls {
            let params = TlsParameters::new(s.host.clone()).map_err(failed("TLS"))?;
            tokio::time::timeout(self.timeout, conn.starttls(params, &s.hello))
                .await
                .map_err(within("STARTTLS"))?
                .map_err(failed("STARTTLS"))?;
        }
        if let Some(credentials) = &s.credentials {
            tokio::time::timeout(
                self.timeout,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await
            .map_err(within("AUTH"))?
            .map_err(failed("AUTH"))?;
        }
        Ok(conn)
    }

    /// TLS from the first byte (`smtps://`), checked against the Web PKI roots as lettre
    /// checks them.
    async fn wrap_tls(&self, tcp: TcpStream) -> Result<TlsStream, MailError> {
        let config = self
            .tls
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                Arc::new(
                    rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .expect("ring supports the default protocol versions")
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            })
            .clone();
        let name = rustls::pki_types::ServerName::try_from(self.server.host.clone())
            .map_err(|e| MailError::Config(format!("RIGHTSFLOW_SMTP_URL host: {e}")))?;
        let stream = tokio::time::timeout(
            self.timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| MailError::Send("TLS: no answer within the timeout".into()))?
        .map_err(|e| MailError::Send(format!("TLS: {e}")))?;
        Ok(TlsStream(stream))
    }
}

/// Why one send failed.
enum SendError {
    Smtp(lettre::transport::smtp::Error),
    TimedOut,
}

impl SendError {
    /// The connection broke (no reply of the server's, no timeout).
    fn is_network(&self) -> bool {
        matches!(self, SendError::Smtp(e) if !e.is_transient() && !e.is_permanent() && !e.is_timeout())
    }

    fn into_mail_error(self, timeout: Duration) -> MailError {
        match self {
            SendError::Smtp(e) => MailError::Send(e.to_string()),
            SendError::TimedOut => {
                MailError::Send(format!("no reply within {} s", timeout.as_secs()))
            }
        }
    }
}

/// The TLS stream handed to lettre, which wants to know the peer's address.
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The client's own runtime: one thread driving the sockets; each send is polled on the
/// calling thread.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn new() -> Runtime {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("smtp")
            .enable_io()
            .enable_time()
            .build()
            .expect("an SMTP runtime with one thread can be built");
        Runtime(Some(runtime))
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.0.as_ref().expect("present until dropped").block_on(f)
    }
}

impl Drop for Runtime {
    // The client may be dropped inside async code (a server shutting down), where dropping a
    // runtime the usual way panics.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_as_lettre_reads_them() {
        let s = Server::from_url("smtp://mail.example.com").unwrap();
        assert_eq!((s.port, s.security), (25, Security::Plain));
        assert!(s.credentials.is_none());
        let s = Server::from_url("smtp://u%40x:p%2Fw@mail.example.com?tls=required").unwrap();
        assert_eq!((s.port, s.security), (587, Security::StartTlsRequired));
        assert_eq!(
            s.credentials,
            Some(Credentials::new("u@x".into(), "p/w".into()))
        );
        let s = Server::from_url("smtp://h:2525?tls=opportunistic").unwrap();
        assert_eq!(
            (s.port, s.security),
            (2525, Security::StartTlsOpportunistic)
        );
        let s = Server::from_url("smtps://h/client.example.org").unwrap();
        assert_eq!((s.port, s.security), (465, Security::Tls));
        assert_eq!(s.hello, ClientId::Domain("client.example.org".into()));
        let s = Server::from_url("smtp://[::1]:2525").unwrap();
        assert_eq!(s.host, "::1");
        for bad in ["http://h", "smtp://h?tls=sometimes", "smtp://", "not a url"] {
            assert!(
                matches!(Server::from_url(bad), Err(MailError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_debug_form_leaves_the_password_out() {
        let s = Server::from_url("smtp://user:hunter2@h").unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("authenticates: true"), "{shown}");
    }
}
