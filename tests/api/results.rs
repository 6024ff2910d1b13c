//! Results: staff attach an access report to an approved request; only the verified subject
//! downloads it, while the link lives; every download is counted and audited.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::on_both_backends;
use rightsflow::domain::Role;

async fn attach(
    app: &TestApp,
    token: &str,
    id: &str,
    name: &str,
    mime: &str,
    body: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!(
            "/api/v1/staff/requests/{id}/results?file_name={name}"
        )))
        .bearer_auth(token)
        .header("Content-Type", mime)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn only_the_verified_subject_downloads_a_result_while_it_lives(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    let id = app.id_of(&admin, &sub.reference).await;
    let session = app.verify_by_code(&sub.reference).await;
    let report = "{\"account\":{\"email\":\"x@subjects.test\"}}";
    // Not before the request is approved.
    let early = attach(&app, &admin, &id, "report.json", "application/json", report).await;
    assert_eq!(
        error_code(early).await,
        (StatusCode::CONFLICT, "result_not_allowed".into())
    );
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    // Bad names, types and empty files are refused.
    let bad = attach(
        &app,
        &admin,
        &id,
        "..%2Fetc%2Fpasswd",
        "application/json",
        report,
    )
    .await;
    assert_eq!(
        error_code(bad).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_file_name".into())
    );
    let bad = attach(
        &app,
        &admin,
        &id,
        "report.exe",
        "application/x-msdownload",
        report,
    )
    .await;
    assert_eq!(
        error_code(bad).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into()
        )
    );
    let bad = attach(&app, &admin, &id, "report.json", "application/json", "").await;
    assert_eq!(
        error_code(bad).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "empty_result".into())
    );
    // An auditor cannot attach anything.
    let (_, auditor) = app.staff("auditor-results", Role::Auditor).await;
    let res = attach(
        &app,
        &auditor,
        &id,
        "report.json",
        "application/json",
        report,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = attach(&app, &admin, &id, "report.json", "application/json", report).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let meta: Value = res.json().await.unwrap();
    assert_eq!(meta["size"], report.len());
    // The attachment is in the audit trail, with the file's checksum.
    let staff_view = app.staff_get(&admin, &id).await;
    assert!(staff_view
        .to_string()
        .contains(meta["sha256"].as_str().unwrap()));

    let listed = app.subject_get(&sub.reference, &session).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let list = app
        .client
        .get(app.url(&format!("/api/v1/requests/{}/results", sub.reference)))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    let list: Value = list.json().await.unwrap();
    let rid = list["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/requests/{}/results/{rid}", sub.reference);
    let file = app
        .client
        .get(app.url(&path))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert!(file.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment; filename=\"report.json\""));
    assert_eq!(file.text().await.unwrap(), report);
    // Sealed at rest: the stored chunks do not hold the report's text.
    let stored = crate::packages::stored_chunks(&app);
    assert_eq!(stored.len(), 1);
    assert!(!stored[0]
        .windows(b"x@subjects.test".len())
        .any(|w| w == b"x@subjects.test"));
    // Nobody else: no session, or another subject's session.
    let res = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let other = app.submit("access", "cn").await;
    let other_session = app.verify_by_code(&other.reference).await;
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&other_session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Counted; and gone once the link has expired.
    let request = app.services.clone();
    let reference = rightsflow::domain::Reference::parse(&sub.reference).unwrap();
    let token = session.clone();
    let (count, later) = tokio::task::spawn_blocking(move || {
        let r =
            rightsflow::service::requests::get_for_subject(&request, &reference, &token).unwrap();
        let now = rightsflow::service::now();
        let count = rightsflow::service::results::live(&request, &r, now).unwrap()[0].downloads;
        let eight_days = now + chrono::Duration::days(8);
        let later =
            rightsflow::service::results::download(&request, &r, &rid, eight_days).map(|_| ());
        (count, later)
    })
    .await
    .unwrap();
    assert_eq!(count, 1);
    assert!(matches!(
        later,
        Err(rightsflow::service::ServiceError::NotFound)
    ));
}
on_both_backends!(only_the_verified_subject_downloads_a_result_while_it_lives);

async fn results_belong_to_access_and_portability_only(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("restriction", "cn").await;
    let id = app.id_of(&admin, &sub.reference).await;
    app.verify_by_code(&sub.reference).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    let res = attach(&app, &admin, &id, "report.csv", "text/csv", "a,b\n").await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::CONFLICT, "result_not_allowed".into())
    );
}
on_both_backends!(results_belong_to_access_and_portability_only);
