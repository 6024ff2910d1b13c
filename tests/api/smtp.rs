//! A real SMTP server on loopback for tests: it speaks enough of RFC 5321 for lettre (EHLO,
//! MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT), keeps what it receives, and can be
//! told to refuse mail (550) to exercise retries.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.data).unwrap()
    }

    pub fn header(&self, name: &str) -> String {
        use mailparse::MailHeaderMap;
        self.parsed()
            .headers
            .get_first_value(name)
            .unwrap_or_default()
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID")
    }

    pub fn subject(&self) -> String {
        self.header("Subject")
    }

    /// The decoded body of the first part with this MIME type.
    pub fn part(&self, mime: &str) -> Option<String> {
        fn find(p: &mailparse::ParsedMail<'_>, mime: &str) -> Option<String> {
            if p.ctype.mimetype == mime {
                return p.get_body().ok();
            }
            p.subparts.iter().find_map(|s| find(s, mime))
        }
        find(&self.parsed(), mime)
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    refusing: Arc<AtomicBool>,
    /// Connections accepted so far.
    sessions: Arc<AtomicUsize>,
    /// Sessions that began before the `hang_ups`-th hang-up close at their next command.
    hang_ups: Arc<AtomicUsize>,
}

impl SmtpSink {
    /// Starts the server on its own thread and runtime, so it keeps answering while the test's
    /// runtime shuts down (which waits for the application's blocking sends to finish).
    pub async fn start() -> SmtpSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let sink = SmtpSink {
            port: listener.local_addr().unwrap().port(),
            received: Arc::default(),
            refusing: Arc::default(),
            sessions: Arc::default(),
            hang_ups: Arc::default(),
        };
        let s = sink.clone();
        on_own_thread(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    /// How many connections clients opened.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }

    /// Makes every open connection close, without a reply, at its next command (as a server
    /// does with clients idle too long).
    pub fn hang_up(&self) {
        self.hang_ups.fetch_add(1, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The messages after the first `n` received (a reader that polls takes only what is new).
    pub fn messages_since(&self, n: usize) -> Vec<Received> {
        let received = self.received.lock().unwrap();
        received
            .get(n..)
            .map(<[Received]>::to_vec)
            .unwrap_or_default()
    }

    /// Waits until at least `n` messages arrived (or fails the test after `secs`).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        at_least(n, secs, "messages", || self.messages()).await
    }

    /// The messages to one address.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == address))
            .collect()
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        let era = self.hang_ups.load(Ordering::SeqCst);
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink.test ESMTP\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if self.hang_ups.load(Ordering::SeqCst) != era {
                return Ok(());
            }
            let cmd = line.trim_end().to_owned();
            let upper = cmd.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 20000000\r\n"
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                b"250 ok\r\n"
            } else if upper.starts_with("RSET") {
                (from, to) = (String::new(), Vec::new());
                b"250 ok\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&cmd[10..]);
                b"250 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                if self.refusing.load(Ordering::SeqCst) {
                    b"550 5.7.1 mailbox unavailable (the test sink refuses)\r\n"
                } else {
                    to.push(address(&cmd[8..]));
                    b"250 ok\r\n"
                }
            } else if upper == "DATA" {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if lines.read_until(b'\n', &mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == b".\r\n" || l == b".\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    let body = if l.starts_with(b"..") {
                        &l[1..]
                    } else {
                        &l[..]
                    };
                    data.extend_from_slice(body);
                }
                self.received.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                (from, to) = (String::new(), Vec::new());
                b"250 ok: queued\r\n"
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 command not implemented\r\n"
            };
            write.write_all(reply).await?;
        }
    }
}

/// Runs a server loop on a thread of its own with its own runtime (for the life of the process).
fn on_own_thread(server: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(server);
    });
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg.find('>').unwrap_or(arg.len());
    arg[start..end].to_owned()
}

/// One captured HTTP request: lower-cased headers and the body.
pub type Captured = (Vec<(String, String)>, String);

/// How a captured endpoint answers a request: status, headers, body.
pub type Responder = Arc<dyn Fn(&Captured) -> (u16, Vec<(String, String)>, String) + Send + Sync>;

/// A loopback HTTP endpoint that records POSTs (an SMS gateway or data system stand-in) and
/// answers 200 with nothing, or what its responder says.
#[derive(Clone, Default)]
pub struct HttpCapture {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Captured>>>,
    /// The bodies as bytes (a ZIP is not text).
    pub raw: Arc<Mutex<Vec<Vec<u8>>>>,
    responder: Option<Responder>,
}

impl HttpCapture {
    pub async fn start() -> HttpCapture {
        HttpCapture::answering(None).await
    }

    pub async fn start_with(responder: Responder) -> HttpCapture {
        HttpCapture::answering(Some(responder)).await
    }

    async fn answering(responder: Option<Responder>) -> HttpCapture {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let capture = HttpCapture {
            port: listener.local_addr().unwrap().port(),
            responder,
            ..HttpCapture::default()
        };
        let c = capture.clone();
        on_own_thread(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    let mut headers = Vec::new();
                    let mut line = String::new();
                    reader.read_line(&mut line).await.ok()?;
                    loop {
                        line.clear();
                        reader.read_line(&mut line).await.ok()?;
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        let (k, v) = l.split_once(':')?;
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    tokio::io::AsyncReadExt::read_exact(&mut reader, &mut body)
                        .await
                        .ok()?;
                    c.raw.lock().unwrap().push(body.clone());
                    let captured = (headers, String::from_utf8_lossy(&body).into_owned());
                    let (status, extra, answer) = match &c.responder {
                        Some(r) => r(&captured),
                        None => (200, vec![], String::new()),
                    };
                    c.requests.lock().unwrap().push(captured);
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        answer.len()
                    );
                    for (k, v) in extra {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    write
                        .write_all(format!("{head}{answer}").as_bytes())
                        .await
                        .ok()
                });
            }
        });
        capture
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sms", self.port)
    }

    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Captured> {
        at_least(n, secs, "requests", || {
            self.requests.lock().unwrap().clone()
        })
        .await
    }
}

impl SmtpSink {
    /// Waits until `address` has received at least `n` messages; returns them in arrival order.
    pub async fn wait_to(&self, address: &str, n: usize, secs: u64) -> Vec<Received> {
        at_least(n, secs, &format!("messages to {address}"), || {
            self.to(address)
        })
        .await
    }
}

/// Polls `get` until it returns at least `n` items, failing the test after `secs` seconds.
async fn at_least<T>(n: usize, secs: u64, what: &str, get: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = get();
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} {what}, got {}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
