//! Scheduled jobs inside `rightsflow serve` and `rightsflow worker`. Each is safe to run on
//! several instances at once: expiry through the workflow's version check, reminders through
//! their primary key, the outbox through leases.

use std::future::Future;
use std::time::Duration;

use crate::notifications::{reminders, Shutdown};
use crate::service::{now, requests, results, retention, ServiceError, Services};

/// Runs `job` every `every` until shutdown; failures are logged and retried next tick.
async fn every<F, Fut>(name: &'static str, every: Duration, shutdown: Shutdown, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<usize, ServiceError>, tokio::task::JoinError>>,
{
    while !shutdown.is_triggered() {
        match job().await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(job = name, error = %e, "scheduled job failed; will retry")
            }
            Err(e) => tracing::error!(job = name, error = %e, "scheduled job panicked; will retry"),
        }
        shutdown.sleep(every).await;
    }
}

/// Expires requests whose subject never verified within the window, purges the bytes of
/// results whose download link has expired, and anonymises requests whose evidence period
/// (`retention_days`) has run out.
pub async fn expiry_loop(
    services: Services,
    retention_days: u32,
    period: Duration,
    shutdown: Shutdown,
) {
    every("expiry", period, shutdown, || {
        let s = services.clone();
        tokio::task::spawn_blocking(move || {
            let expired = requests::expire_unverified(&s, now())?;
            let purged = results::purge_expired(&s, now())?;
            Ok(expired + purged + retention::run(&s, retention_days, now())?)
        })
    })
    .await;
}

/// Queues "due soon" and "overdue" reminders for staff.
pub async fn reminder_loop(services: Services, days: u32, period: Duration, shutdown: Shutdown) {
    every("reminders", period, shutdown, || {
        let s = services.clone();
        tokio::task::spawn_blocking(move || reminders::send_due_reminders(&s, days, now()))
    })
    .await;
}
