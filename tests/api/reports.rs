//! The dashboard's kept figures (storage::report_days) agree with counting live, on both
//! databases: the period's answers and the weekly receipts, the first time (when the days are
//! counted and kept) and the second (read from the kept rows), and after a back-dated request.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::helpers::TestApp;
use crate::on_both_backends;
use rightsflow::storage::{report_days, reports};

fn shanghai_midnight(days_ago: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    let tz = chrono_tz::Asia::Shanghai;
    let d = now.with_timezone(&tz).date_naive() - Duration::days(days_ago);
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

async fn kept_figures_agree_with_live_counts(app: TestApp) {
    let db = app.services.db().clone();
    tokio::task::spawn_blocking(move || {
        // 4,000 generated requests over two years (20% open).
        rightsflow::bench::seed(&db, 4000).unwrap();
        let mut conn = db.conn().unwrap();
        let now = Utc::now();
        let (from, to) = (shanghai_midnight(400, now), shanghai_midnight(-1, now));
        let live = reports::answered_between(&mut conn, from, to).unwrap();
        assert!(
            live.iter().map(|b| b.n).sum::<i64>() > 500,
            "enough answers to compare"
        );
        let mut sorted_live = live.clone();
        sorted_live.sort_by(|x, y| (&x.kind, x.hours).cmp(&(&y.kind, y.hours)));
        let cache = report_days::AnsweredCache::default();
        for round in ["counted and kept", "read back", "from the cache"] {
            // The first two rounds with a cache of their own (nothing in it), the third with
            // the one the second filled.
            let fresh = report_days::AnsweredCache::default();
            let using = if round == "counted and kept" {
                &fresh
            } else {
                &cache
            };
            if round == "from the cache" {
                // Emptied kept rows would show if they were read again.
                diesel::connection::SimpleConnection::batch_execute(
                    &mut *conn,
                    "UPDATE report_answered_days SET buckets = ''",
                )
                .unwrap();
            }
            let kept = report_days::answered(&mut conn, None, using, from, to, now).unwrap();
            assert_eq!(kept, sorted_live, "answers, {round}");
        }
        // Weekly windows in Shanghai time, as the chart asks for them.
        let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = (0..60)
            .map(|w| {
                (
                    shanghai_midnight(7 * w + 7, now),
                    shanghai_midnight(7 * w, now),
                )
            })
            .collect();
        let live: Vec<i64> = windows
            .iter()
            .map(|(a, b)| reports::received_between(&mut conn, *a, *b).unwrap())
            .collect();
        assert!(live.iter().sum::<i64>() > 100);
        for round in ["counted and kept", "read back"] {
            let kept = report_days::received(&mut conn, None, &windows, now).unwrap();
            assert_eq!(kept, live, "receipts, {round}");
        }
    })
    .await
    .unwrap();
    // Back-dated through the API (staff logging a letter), then counted in its week.
    let token = app.admin_token().await;
    let received = Utc::now() - Duration::days(30);
    let body = serde_json::json!({
        "kind": "access", "jurisdiction": "cn", "channel": "letter",
        "received_at": received.to_rfc3339(),
        "subject": { "email": "li.lei@example.com" }, "details": { "categories": ["orders"] },
    });
    let res = app
        .post_json("/api/v1/staff/requests", &body, Some(&token))
        .await;
    assert_eq!(
        res.status(),
        reqwest::StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let db = app.services.db().clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().unwrap();
        let now = Utc::now();
        let window = [(received - Duration::days(3), received + Duration::days(3))];
        let live = reports::received_between(&mut conn, window[0].0, window[0].1).unwrap();
        assert_eq!(
            report_days::received(&mut conn, None, &window, now).unwrap(),
            vec![live]
        );
    })
    .await
    .unwrap();
}
on_both_backends!(kept_figures_agree_with_live_counts);
