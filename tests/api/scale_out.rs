//! Several instances on one database (issue #9): scheduled jobs run once per tick across them.

use diesel::prelude::*;
use rightsflow::storage::job_ticks;
use rightsflow::storage::schema::job_ticks as ticks;

use crate::helpers::{spawn_app_with, TestApp};
use crate::on_both_backends;

/// Eight threads claim the same tick at once: exactly one wins; the next tick is free again.
async fn one_instance_claims_each_tick(app: TestApp) {
    let at = chrono::Utc::now();
    let tick = job_ticks::tick_of(at, 60);
    let claims: Vec<_> = (0..8)
        .map(|i| {
            let s = app.services.clone();
            std::thread::spawn(move || {
                let mut c = s.db().conn().unwrap();
                job_ticks::claim(&mut c, "expiry", tick, &format!("instance-{i}"), at).unwrap()
            })
        })
        .collect();
    let won = claims
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|mine| *mine)
        .count();
    assert_eq!(won, 1, "exactly one instance runs the tick");
    let mut c = app.services.db().conn().unwrap();
    assert!(job_ticks::claim(&mut c, "expiry", tick + 1, "instance-0", at).unwrap());
    assert!(
        job_ticks::claim(&mut c, "reminders", tick, "instance-0", at).unwrap(),
        "ticks are per job"
    );
}
on_both_backends!(one_instance_claims_each_tick);

fn every_second(config: &mut rightsflow::config::Config) {
    config.expiry_sweep_seconds = 1;
}

/// Two running instances on one database, each sweeping every second: their loops claim each
/// second's tick in the shared table before sweeping (which claim wins is the test above's
/// subject), so the table holds one row per second that was swept, whoever swept it.
async fn two_instances_share_the_sweeps(app: TestApp) {
    let (url, dir) = (app.database_url(), app.data_dir().to_path_buf());
    let second = spawn_app_with(app.backend, move |c| {
        every_second(c);
        c.database_url = Some(url);
        c.data_dir = dir;
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let first_tick = job_ticks::tick_of(chrono::Utc::now(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let seconds = started.elapsed().as_secs_f64();
    let s = app.services.clone();
    let rows: Vec<(i64, String)> = tokio::task::spawn_blocking(move || {
        ticks::table
            .filter(ticks::job.eq("expiry"))
            .filter(ticks::tick.ge(first_tick))
            .select((ticks::tick, ticks::instance))
            .order(ticks::tick.asc())
            .load(&mut *s.db().conn().unwrap())
            .unwrap()
    })
    .await
    .unwrap();
    // Both instances woke about once a second each; about one claimed tick per second (the
    // first instance swept before the second started; those ticks are left out).
    assert!(rows.len() >= 3, "{rows:?}");
    assert!((rows.len() as f64) <= seconds + 2.0, "{rows:?}");
    for pair in rows.windows(2) {
        assert!(pair[0].0 < pair[1].0, "one row per tick: {rows:?}");
    }
    drop(second);
}
on_both_backends!(two_instances_share_the_sweeps, super::every_second);
