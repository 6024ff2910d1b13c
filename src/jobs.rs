//! Scheduled jobs inside `rightsflow serve` and `rightsflow worker`. With several instances on
//! one database each job runs once per tick across all of them (the first instance to claim
//! the tick runs it: `storage::job_ticks`); each is also safe should two run at once: expiry
//! through the workflow's version check, retention through its claim rows, reminders through
//! their primary key, the outbox through leases.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use crate::notifications::{reminders, Shutdown};
use crate::service::{now, requests, results, retention, ServiceError, Services};
use crate::storage::job_ticks;

/// This process among the instances (recorded with the ticks it claims).
fn instance() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// Whether this instance runs `name`'s current tick.
async fn claim(services: &Services, name: &'static str, every: Duration) -> bool {
    let s = services.clone();
    let claimed = tokio::task::spawn_blocking(move || -> Result<bool, ServiceError> {
        let at = now();
        let tick = job_ticks::tick_of(at, every.as_secs());
        Ok(job_ticks::claim(
            &mut *s.db().conn()?,
            name,
            tick,
            instance(),
            at,
        )?)
    })
    .await;
    match claimed {
        Ok(Ok(mine)) => mine,
        Ok(Err(e)) => {
            tracing::warn!(job = name, error = %e, "could not claim the job's tick; will retry");
            false
        }
        Err(e) => {
            tracing::error!(job = name, error = %e, "claiming the job's tick panicked");
            false
        }
    }
}

/// Runs `job` every `every` until shutdown, when this instance claims the tick; failures are
/// logged and retried next tick.
async fn every<F, Fut>(
    name: &'static str,
    every: Duration,
    services: Services,
    shutdown: Shutdown,
    mut job: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<usize, ServiceError>, tokio::task::JoinError>>,
{
    while !shutdown.is_triggered() {
        if claim(&services, name, every).await {
            match job().await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(job = name, error = %e, "scheduled job failed; will retry")
                }
                Err(e) => {
                    tracing::error!(job = name, error = %e, "scheduled job panicked; will retry")
                }
            }
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
    every("expiry", period, services.clone(), shutdown, || {
        let s = services.clone();
        tokio::task::spawn_blocking(move || {
            let expired = requests::expire_unverified(&s, now())?;
            let purged = results::purge_expired(&s, now())?;
            // Shared rate-limit windows older than ten minutes count for nothing any more.
            let stale = now().timestamp() - 600;
            crate::storage::rate_windows::forget_before(&mut *s.db().conn()?, stale)?;
            Ok(expired + purged + retention::run(&s, retention_days, now())?)
        })
    })
    .await;
}

/// Queues "due soon" and "overdue" reminders for staff.
pub async fn reminder_loop(services: Services, days: u32, period: Duration, shutdown: Shutdown) {
    every("reminders", period, services.clone(), shutdown, || {
        let s = services.clone();
        tokio::task::spawn_blocking(move || reminders::send_due_reminders(&s, days, now()))
    })
    .await;
}
