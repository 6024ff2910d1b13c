//! The retention job: anonymises requests whose evidence period has run out (see
//! `storage::retention`) and deletes verification challenges that no longer count. Safe on
//! several instances at once: each request is claimed by one.

use chrono::{DateTime, Duration, Utc};

use super::{ServiceError, Services};
use crate::storage::retention;

/// Requests anonymised per run (the next run takes the next ones).
const BATCH: i64 = 100;

/// One run: anonymises up to a batch of requests that ended more than `days` days before
/// `now`; returns how many this instance anonymised and challenges it deleted.
pub fn run(s: &Services, days: u32, now: DateTime<Utc>) -> Result<usize, ServiceError> {
    let mut conn = s.db().conn()?;
    let due = retention::due(&mut conn, now - Duration::days(i64::from(days)), BATCH)?;
    let mut anonymised = 0;
    for id in &due {
        anonymised += usize::from(retention::anonymise(&mut conn, id, now)?);
    }
    if anonymised > 0 {
        tracing::info!(
            requests = anonymised,
            "anonymised requests past their evidence period"
        );
    }
    // A day past expiry a challenge's attempts no longer matter.
    let purged = retention::purge_challenges(&mut conn, now - Duration::days(1))?;
    Ok(anonymised + purged)
}
