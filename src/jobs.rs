//! Scheduled jobs that run inside `rightsflow serve`. Each is safe to run on several instances
//! at once (the workflow's version check lets only one of them record each change).

use std::time::Duration;

use crate::service::{now, requests, Services};

/// Expires requests whose subject never verified within the window, every `every`.
pub async fn expiry_loop(services: Services, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = services.clone();
        match tokio::task::spawn_blocking(move || requests::expire_unverified(&s, now())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "expiry job failed; will retry"),
            Err(e) => tracing::error!(error = %e, "expiry job panicked; will retry"),
        }
    }
}
