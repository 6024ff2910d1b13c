//! An SMTP sink on loopback for the outbox benchmark: it speaks enough of RFC 5321 for lettre
//! (EHLO/HELO, MAIL, RCPT, DATA with the dot terminator, RSET, NOOP, QUIT), keeps every
//! message's Message-ID and nothing else, and answers as fast as it can. (The tests have a
//! fuller one in tests/api/smtp.rs; a benchmark binary cannot use test code.)

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Default)]
pub struct Sink {
    /// The Message-ID of every message accepted, in order of arrival.
    ids: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    /// Starts listening on 127.0.0.1 (any free port); returns the sink and its port.
    pub async fn start() -> std::io::Result<(Sink, u16)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let sink = Sink::default();
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        Ok((sink, port))
    }

    /// The Message-IDs received so far.
    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().map(|v| v.clone()).unwrap_or_default()
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let verb = line
                .get(..4)
                .map(str::to_ascii_uppercase)
                .unwrap_or_default();
            match verb.as_str() {
                "EHLO" => write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?,
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut id = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        if id.is_empty() && line.to_ascii_lowercase().starts_with("message-id:") {
                            id = line["message-id:".len()..].trim().to_owned();
                        }
                    }
                    if let Ok(mut ids) = self.ids.lock() {
                        ids.push(id);
                    }
                    write.write_all(b"250 kept\r\n").await?;
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                // HELO, MAIL, RCPT, RSET, NOOP: all fine.
                _ => write.write_all(b"250 ok\r\n").await?,
            }
        }
    }
}
