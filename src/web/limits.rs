//! Rate limits. Every route but the health probes and static files counts against one broad
//! per-address budget ([`limit_every_request`]: the portal's pages, the consent API, the
//! console, the API); the routes that cost or guess more have tighter ones of their own:
//! submission, code checks, code resends, staff sign-in, fulfilment callbacks. Fixed one-minute
//! windows per key (client address, or request reference). The limits against guessing (codes,
//! resends, sign-in) count in the database (`storage::rate_windows`), shared by every instance;
//! the broad budget, submissions and callbacks count in this process's memory (several
//! instances each count those on their own; docs/OPERATIONS.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};
use serde::Deserialize;

use super::error::ApiError;
use crate::storage::Database;

/// Requests allowed per minute, per key.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Any request but health probes and static files (pages, the consent API, the console,
    /// the API): the budget that keeps one address from running the service down.
    pub requests_per_ip: u32,
    pub submissions_per_ip: u32,
    pub code_checks_per_ip: u32,
    pub code_checks_per_reference: u32,
    pub resends_per_ip: u32,
    pub staff_logins_per_ip: u32,
    /// Fulfilment callbacks (`POST /api/v1/fulfilment/tasks/{task}/callback`): signed, but
    /// answering costs a database read and an HMAC, so one address may not call without end.
    pub callbacks_per_ip: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        // Generous per address: many people in China share one (carrier-grade NAT).
        RateLimitConfig {
            // Twenty a second, sustained for a minute: far above a person clicking through
            // pages or an office of staff behind one address, far below a flood.
            requests_per_ip: 1200,
            submissions_per_ip: 10,
            code_checks_per_ip: 30,
            code_checks_per_reference: 10,
            resends_per_ip: 10,
            staff_logins_per_ip: 10,
            // A data system finishing a batch calls back once per task: room for ten a second.
            callbacks_per_ip: 600,
        }
    }
}

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many keys, finished windows are swept out, so memory stays bounded.
const SWEEP_AT: usize = 10_000;

pub struct Limiter {
    per_window: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    /// Counted in the database instead, shared by every instance on it (the limits that guard
    /// against guessing): the limiter's name there and the database.
    shared: Option<(&'static str, Database)>,
}

impl Limiter {
    pub fn new(per_minute: u32) -> Limiter {
        Limiter {
            per_window: per_minute.max(1),
            windows: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// A limiter whose counts live in the database (`rate_windows`), so that N instances behind
    /// a balancer allow a key `per_minute` in all, not N times as many.
    pub fn shared(per_minute: u32, name: &'static str, db: Database) -> Limiter {
        Limiter {
            shared: Some((name, db)),
            ..Limiter::new(per_minute)
        }
    }

    /// Counts one hit in the database's current one-minute window (aligned to the clock, the
    /// same on every instance); `Err(seconds)` when over the limit. Blocking.
    fn hit_shared(
        name: &str,
        db: &Database,
        per_window: u32,
        key: &str,
    ) -> Result<Result<(), u64>, crate::storage::StoreError> {
        let now = chrono::Utc::now().timestamp();
        let window = WINDOW.as_secs() as i64;
        let start = now - now.rem_euclid(window);
        let digest = db.vault().rate_key(name, key);
        let hits = crate::storage::rate_windows::hit(&mut *db.conn()?, name, &digest, start)?;
        Ok(if hits > i64::from(per_window) {
            Err((start + window - now).max(1) as u64)
        } else {
            Ok(())
        })
    }

    /// Counts one request for `key`; `Err(seconds)` when over the limit.
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_window {
            return Err(WINDOW
                .saturating_sub(now.duration_since(entry.0))
                .as_secs()
                .max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The limiters of one application (shared by its workers).
pub struct Limits {
    pub requests: Limiter,
    pub submissions: Limiter,
    pub code_checks_ip: Limiter,
    pub code_checks_reference: Limiter,
    pub resends: Limiter,
    pub staff_logins: Limiter,
    pub callbacks: Limiter,
}

impl Limits {
    /// The limits that guard against guessing (codes per request and per address, code
    /// resends, staff sign-in) count in `db`, shared by every instance on it; the broad and
    /// the costly-route budgets count in this process (a database write on every request
    /// would cost more than what they protect).
    pub fn new(cfg: &RateLimitConfig, db: Database) -> Limits {
        Limits {
            requests: Limiter::new(cfg.requests_per_ip),
            submissions: Limiter::new(cfg.submissions_per_ip),
            code_checks_ip: Limiter::shared(cfg.code_checks_per_ip, "code_checks_ip", db.clone()),
            code_checks_reference: Limiter::shared(
                cfg.code_checks_per_reference,
                "code_checks_reference",
                db.clone(),
            ),
            resends: Limiter::shared(cfg.resends_per_ip, "resends_ip", db.clone()),
            staff_logins: Limiter::shared(cfg.staff_logins_per_ip, "staff_logins_ip", db),
            callbacks: Limiter::new(cfg.callbacks_per_ip),
        }
    }
}

/// The client's address as the server sees it (behind a proxy: the proxy's).
pub fn client(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Applies `limiter` to `key`, answering 429 `rate_limited` with `Retry-After` when over.
pub async fn check(limiter: &Limiter, key: &str) -> Result<(), ApiError> {
    let outcome = match &limiter.shared {
        None => limiter.hit(key),
        Some((name, db)) => {
            let (name, db, per_window, owned) =
                (*name, db.clone(), limiter.per_window, key.to_owned());
            let counted = web::block(move || Limiter::hit_shared(name, &db, per_window, &owned))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            match counted {
                Ok(outcome) => outcome,
                // The database did not answer: this process still counts on its own, so a
                // guesser is limited per instance rather than not at all.
                Err(e) => {
                    tracing::warn!(error = %e, limiter = name, "shared rate limit unavailable; counting in this process");
                    limiter.hit(key)
                }
            }
        }
    };
    outcome.map_err(|retry_after| {
        tracing::warn!(retry_after, "rate limit reached");
        ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("请求过于频繁，请 {retry_after} 秒后再试"),
            format!("Too many requests; try again in {retry_after} s"),
        )
        .retry_after(retry_after)
    })
}

/// Health probes (load balancers poll them) and static files (cached, and part of every page
/// already counted) are not counted.
fn uncounted(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz") || path.starts_with("/static/")
}

/// Middleware: the broad per-address budget on every counted request. Past it, 429
/// `rate_limited` with `Retry-After`: as the API's JSON error under `/api/`, as the portal's
/// error page (in the visitor's language) everywhere else.
pub async fn limit_every_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !uncounted(req.path()) {
        if let Some(limits) = req.app_data::<web::Data<Limits>>() {
            if let Err(e) = check(&limits.requests, &client(req.request())).await {
                if req.path().starts_with("/api/") {
                    return Err(e.into());
                }
                let page = super::portal::rate_limited_page(req.request(), &e);
                return Err(actix_web::error::InternalError::from_response(e, page).into());
            }
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_quota_per_window_and_others_are_separate() {
        let l = Limiter::new(3);
        assert!((0..3).all(|_| l.hit("a").is_ok()));
        let wait = l.hit("a").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.hit("b").is_ok());
    }
}
