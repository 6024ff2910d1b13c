//! A load generator for the HTTP benchmarks: `concurrency` clients, each on its own kept-alive
//! HTTP/1.1 connection, sending one request after another for a fixed time; latencies are
//! recorded for the answers that arrive in the measured window (after a warm-up). Written on
//! tokio's sockets rather than an HTTP client crate so that the generator costs little CPU on a
//! two-core machine where it shares the cores with the server it measures (and costs the same
//! for the server and its ceiling).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One HTTP/1.1 request over a kept-alive connection; reconnects when the server closes it.
pub struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

/// An answer's status (its body is read and dropped).
pub struct Answer {
    pub status: u16,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&str>,
    ) -> std::io::Result<Answer> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(body) = json {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(json.unwrap_or_default());
        // A kept-alive connection the server closed meanwhile fails on first use: once more on
        // a fresh one.
        for attempt in 0..2 {
            if self.conn.is_none() {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                self.conn = Some(BufReader::new(stream));
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            match exchange(conn, head.as_bytes()).await {
                Ok((answer, keep)) => {
                    if !keep {
                        self.conn = None;
                    }
                    return Ok(answer);
                }
                Err(e) => {
                    self.conn = None;
                    if attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        Err(std::io::Error::other("no connection"))
    }
}

async fn exchange(
    conn: &mut BufReader<TcpStream>,
    request: &[u8],
) -> std::io::Result<(Answer, bool)> {
    conn.get_mut().write_all(request).await?;
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let (mut length, mut keep) = (0usize, true);
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                keep = false;
            }
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok((Answer { status }, keep))
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct Load {
    /// Answers with the expected status in the measured window.
    pub ok: usize,
    /// Other answers and failed exchanges in the window.
    pub errors: usize,
    pub seconds: f64,
    /// Latencies of the measured answers, sorted, in microseconds.
    latencies: Vec<u64>,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    /// The `q` quantile (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1] as f64 / 1000.0
    }
}

/// Sends POSTs of `body(n)` (n counts up across all clients) to `path` from `concurrency`
/// clients: `warmup` unmeasured, then `measure`. An answer is counted as done when its status
/// is `expect`.
pub async fn post_load(
    addr: SocketAddr,
    path: &'static str,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    expect: u16,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> Load {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + warmup;
    let end = start + measure;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (counter, body) = (Arc::clone(&counter), Arc::clone(&body));
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(addr);
            let (mut ok, mut errors, mut latencies) = (0usize, 0usize, Vec::new());
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let answer = client.send("POST", path, Some(&body(n))).await;
                let done = Instant::now();
                if sent < start || done > end {
                    continue;
                }
                match answer {
                    Ok(a) if a.status == expect => {
                        ok += 1;
                        latencies.push(done.duration_since(sent).as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            (ok, errors, latencies)
        }));
    }
    let mut load = Load {
        ok: 0,
        errors: 0,
        seconds: measure.as_secs_f64(),
        latencies: Vec::new(),
    };
    for task in tasks {
        if let Ok((ok, errors, latencies)) = task.await {
            load.ok += ok;
            load.errors += errors;
            load.latencies.extend(latencies);
        }
    }
    load.latencies.sort_unstable();
    load
}

/// Waits until `GET /readyz` answers 200; how long it took from `since`.
pub async fn wait_ready(addr: SocketAddr, since: Instant, limit: Duration) -> Option<Duration> {
    while since.elapsed() < limit {
        if let Ok(a) = Client::new(addr).send("GET", "/readyz", None).await {
            if a.status == 200 {
                return Some(since.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// A free loopback port (the OS picks one; it is released for the server to take).
pub fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Resident set size now and its peak (`VmRSS`, `VmHWM`) of a process, in MiB (Linux).
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_rank_that_covers_the_share() {
        let load = Load {
            ok: 100,
            errors: 0,
            seconds: 2.0,
            latencies: (1..=100).map(|ms| ms * 1000).collect(),
        };
        assert_eq!(load.per_second(), 50.0);
        assert_eq!(load.quantile_ms(0.5), 50.0);
        assert_eq!(load.quantile_ms(0.99), 99.0);
        assert_eq!(load.quantile_ms(1.0), 100.0);
    }
}
