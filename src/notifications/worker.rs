//! The outbox worker: claims due rows under a lease, processes them one at a time, and marks
//! each done, retries it later with back-off and jitter, or parks it as failed. Runs inside
//! `rightsflow serve` and as `rightsflow worker`; any number may share one PostgreSQL queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use super::expand::expand;
use super::mail::EmailPayload;
use super::sms::SmsPayload;
use super::{Notifier, NotifyError};
use crate::fulfilment::package::BUILD_RESULT;
use crate::fulfilment::run;
use crate::interop::drp::DRP_CALLBACK;
use crate::interop::opendsr::OPENDSR_CALLBACK;
use crate::service::{now, Services};
use crate::storage::consents::CONSENT_WEBHOOK;
use crate::storage::outbox::TRANSFER;
use crate::storage::outbox::{self, OutboxRow, EMAIL, NOTIFY, SMS, START_FULFILMENT};
use crate::storage::tasks::FULFIL;
use crate::storage::StoreError;

/// A stop signal the blocking loop can poll and the async loop can wait on.
#[derive(Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `d` or until shutdown, whichever comes first.
    pub async fn sleep(&self, d: StdDuration) {
        if self.is_triggered() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.wake.notified() => {}
        }
    }
}

/// The delay before attempt `attempt + 1`: base·2^(attempt−1), capped, then scaled by a random
/// factor in [0.5, 1) so that many rows failing together do not retry together.
pub fn retry_delay(attempt: i32, base_seconds: i64, max_seconds: i64, jitter: f64) -> Duration {
    let exp = base_seconds.saturating_mul(1i64 << attempt.clamp(1, 30).saturating_sub(1));
    let capped = exp.min(max_seconds).max(1);
    Duration::milliseconds((capped as f64 * 1000.0 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as i64)
}

/// Whether an outbox row holds a one-time code (the notification or a delivery of it).
fn carries_code(row: &OutboxRow) -> bool {
    serde_json::from_str::<serde_json::Value>(&row.payload)
        .is_ok_and(|p| p["message"] == crate::domain::Message::VerificationCode.as_str())
}

pub struct Worker {
    services: Services,
    notifier: Arc<Notifier>,
    id: String,
}

impl Worker {
    pub fn new(services: Services, notifier: Arc<Notifier>) -> Worker {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        Worker {
            services,
            notifier,
            id: format!(
                "{host}/{}/{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
        }
    }

    /// Claims the next batch of due rows.
    pub fn claim(&self, now: DateTime<Utc>) -> Result<Vec<OutboxRow>, StoreError> {
        let lease = Duration::seconds(self.notifier.worker.lease_seconds.max(1));
        outbox::claim(
            &mut *self.services.db().conn()?,
            &self.id,
            now,
            now + lease,
            self.notifier.worker.batch.max(1),
        )
    }

    /// Does the work of one row, without recording the outcome.
    pub fn process(&self, row: &OutboxRow) -> Result<(), NotifyError> {
        let payload_error = |e: serde_json::Error| NotifyError::Payload(e.to_string());
        match row.kind.as_str() {
            NOTIFY => expand(&self.services, &self.notifier, row, &self.id, now()).map(|_| ()),
            EMAIL => {
                let email: EmailPayload =
                    serde_json::from_str(&row.payload).map_err(payload_error)?;
                Ok(self.notifier.mailer.send(&row.id, &email)?)
            }
            SMS => {
                let sms: SmsPayload = serde_json::from_str(&row.payload).map_err(payload_error)?;
                Ok(self.notifier.sms.send(&row.id, &sms)?)
            }
            // Fulfilment rides the same queue: its leases, retries and failed list.
            START_FULFILMENT => {
                let request_id = row.request_id.as_deref().unwrap_or_default();
                let s = &self.services;
                run::plan(s, s.systems(), request_id, now())
                    .map(|_| ())
                    .map_err(NotifyError::from)
            }
            BUILD_RESULT => {
                let request_id = row.request_id.as_deref().unwrap_or_default();
                let s = &self.services;
                run::build_then_complete(s, s.systems(), request_id, now())
                    .map_err(NotifyError::from)
            }
            TRANSFER => {
                let request_id = row.request_id.as_deref().unwrap_or_default();
                crate::fulfilment::transfer::send(&self.services, request_id, now())
                    .map_err(NotifyError::from)
            }
            CONSENT_WEBHOOK => crate::fulfilment::consents::send_webhook(&self.services, row)
                .map_err(NotifyError::from),
            DRP_CALLBACK => {
                crate::interop::drp::callback::send(&self.services, row).map_err(NotifyError::from)
            }
            OPENDSR_CALLBACK => crate::interop::opendsr::callback::send(&self.services, row)
                .map_err(NotifyError::from),
            FULFIL => {
                let payload: serde_json::Value =
                    serde_json::from_str(&row.payload).map_err(payload_error)?;
                let task = payload["task"].as_str().unwrap_or_default();
                let s = &self.services;
                run::perform(s, s.systems(), task, now()).map_err(NotifyError::from)
            }
            other => Err(NotifyError::Payload(format!(
                "no worker for outbox kind {other}"
            ))),
        }
    }

    /// Records the outcome of `process`. A notify row that expanded marked itself done in the
    /// same transaction as its deliveries.
    pub fn settle(
        &self,
        row: &OutboxRow,
        result: Result<(), NotifyError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.services.db().conn()?;
        let at = now();
        match result {
            Ok(()) if row.kind == NOTIFY => Ok(()),
            Ok(()) => {
                let recorded = outbox::mark_done(&mut conn, &row.id, &self.id, at)?;
                // A code is a secret for its few minutes: once delivered, drop it from the queue.
                if recorded && carries_code(row) {
                    outbox::scrub_payload(&mut conn, &row.id)?;
                }
                Ok(())
            }
            Err(e) => {
                let cfg = &self.notifier.worker;
                let give_up = e.is_permanent() || row.attempts >= cfg.max_attempts;
                let retry_at = (!give_up).then(|| {
                    at + retry_delay(
                        row.attempts,
                        cfg.retry_base_seconds,
                        cfg.retry_max_seconds,
                        rand::rng().random(),
                    )
                });
                // The log gets the error without addresses or numbers; staff see it whole.
                let shown = crate::telemetry::scrub(&e.to_string());
                match retry_at {
                    Some(when) => {
                        tracing::warn!(outbox_id = %row.id, attempt = row.attempts, error = %shown, retry_at = %when, "delivery failed; will retry")
                    }
                    None => {
                        tracing::error!(outbox_id = %row.id, attempt = row.attempts, error = %shown, "delivery failed; parked as failed")
                    }
                }
                outbox::mark_attempt_failed(&mut conn, &row.id, &self.id, &e.to_string(), retry_at)
            }
        }
    }

    /// One pass: claim a batch and work through it on `concurrency` threads (each sending on
    /// its own pooled connection: an SMTP exchange spends most of its time waiting), stopping
    /// early on shutdown and giving the unstarted rows back. Returns how many rows were done.
    pub fn run_once(&self, shutdown: &Shutdown) -> Result<usize, StoreError> {
        let rows = self.claim(now())?;
        if rows.is_empty() {
            return Ok(0);
        }
        let lanes = self.notifier.worker.concurrency.clamp(1, 32);
        let half_lease = now() + Duration::seconds(self.notifier.worker.lease_seconds.max(1)) / 2;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..lanes.min(rows.len()))
                .map(|_| {
                    scope.spawn(|| -> Result<(), StoreError> {
                        loop {
                            // Start a row only with half the lease left, so it is done (SMTP
                            // times out well within that) before anyone else may take it.
                            if shutdown.is_triggered() || now() > half_lease {
                                return Ok(());
                            }
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(row) = rows.get(i) else {
                                return Ok(());
                            };
                            // Claimed again and again without an outcome (a worker dying on it):
                            // stop trying and show it to staff.
                            let result = if row.attempts > self.notifier.worker.max_attempts {
                                Err(NotifyError::Abandoned)
                            } else {
                                self.process(row)
                            };
                            self.settle(row, result)?;
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(StoreError::Setup("a delivery thread panicked".into()))
                    })
                })
                .collect()
        });
        // Rows no lane started (shutdown, or a lane stopped on a database error) go back.
        let started = next.load(Ordering::SeqCst).min(rows.len());
        if started < rows.len() {
            let rest: Vec<String> = rows[started..].iter().map(|r| r.id.clone()).collect();
            let released = outbox::release(&mut *self.services.db().conn()?, &rest, &self.id)?;
            tracing::info!(released, "gave back unstarted rows");
        }
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(done.load(Ordering::SeqCst))
    }

    /// Works until shutdown: immediately again after a full batch, after a pause when idle.
    pub async fn run(self, shutdown: Shutdown) {
        let worker = Arc::new(self);
        let poll = StdDuration::from_millis(worker.notifier.worker.poll_millis.max(10));
        tracing::info!(worker = %worker.id, "outbox worker started");
        while !shutdown.is_triggered() {
            let (w, s) = (worker.clone(), shutdown.clone());
            match tokio::task::spawn_blocking(move || w.run_once(&s)).await {
                Ok(Ok(n)) if n > 0 => continue,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "outbox worker pass failed; will retry"),
                Err(e) => tracing::error!(error = %e, "outbox worker pass panicked; will retry"),
            }
            shutdown.sleep(poll).await;
        }
        tracing::info!(worker = %worker.id, "outbox worker stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_caps_and_jitters() {
        let d = |attempt, jitter| retry_delay(attempt, 30, 3600, jitter).num_seconds();
        assert_eq!((d(1, 1.0), d(2, 1.0), d(3, 1.0)), (30, 60, 120));
        assert_eq!(d(20, 1.0), 3600);
        assert_eq!(d(1, 0.0), 15);
        assert!((15..=30).contains(&d(1, 0.37)));
    }
}
