//! The service as an operator sees it: probes, the API document, concurrency.

use reqwest::StatusCode;
use rightsflow::domain::Role;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::on_both_backends;

async fn probes_answer(app: TestApp) {
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let backend = match app.backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    assert_eq!(ready, json!({ "status": "ready", "database": backend }));
}
on_both_backends!(probes_answer);

/// The routes the application serves, as (method, OpenAPI path).
const ROUTES: [(&str, &str); 43] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/openapi.json"),
    ("post", "/api/v1/requests"),
    ("get", "/api/v1/requests/{reference}"),
    ("post", "/api/v1/requests/{reference}/withdraw"),
    ("post", "/api/v1/requests/{reference}/reply"),
    ("get", "/api/v1/requests/{reference}/messages"),
    ("get", "/api/v1/requests/{reference}/results"),
    ("get", "/api/v1/requests/{reference}/results/{result_id}"),
    ("post", "/api/v1/staff/requests/{id}/results"),
    ("post", "/api/v1/requests/{reference}/verification"),
    ("post", "/api/v1/requests/{reference}/verification/resend"),
    ("post", "/api/v1/verification/magic-link"),
    ("delete", "/api/v1/session"),
    ("get", "/api/v1/staff/outbox/failed"),
    ("post", "/api/v1/staff/outbox/{id}/retry"),
    ("post", "/api/v1/staff/login"),
    ("get", "/api/v1/staff/requests"),
    ("post", "/api/v1/staff/requests"),
    ("get", "/api/v1/staff/requests/{id}"),
    ("post", "/api/v1/staff/requests/{id}/actions"),
    ("get", "/api/v1/subjects/{platform_user_id}/consents"),
    ("post", "/api/v1/subjects/{platform_user_id}/consents"),
    ("post", "/api/v1/fulfilment/tasks/{task}/callback"),
    ("post", "/api/v1/staff/tasks/{task}/done"),
    ("post", "/api/v1/staff/tasks/{task}/waive"),
    ("post", "/api/v1/staff/requests/{id}/restriction/lift"),
    ("get", "/api/v1/audit/log"),
    ("post", "/drp/v1/agent/{agent_id}"),
    ("get", "/drp/v1/agent/{agent_id}"),
    ("post", "/drp/v1/data-rights-request"),
    ("get", "/drp/v1/data-rights-request/{request_id}"),
    ("delete", "/drp/v1/data-rights-request/{request_id}"),
    ("post", "/api/v1/platform/gpc"),
    ("get", "/opendsr/v1/discovery"),
    ("get", "/opendsr/v1/certificate.pem"),
    ("post", "/opendsr/v1/requests"),
    ("get", "/opendsr/v1/requests/{subject_request_id}"),
    ("delete", "/opendsr/v1/requests/{subject_request_id}"),
    ("post", "/opendsr/v1/opengdpr_requests"),
    ("get", "/opendsr/v1/opengdpr_requests/{subject_request_id}"),
    (
        "delete",
        "/opendsr/v1/opengdpr_requests/{subject_request_id}",
    ),
];

async fn the_openapi_document_lists_every_route(app: TestApp) {
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "a documented operation that is not a route, or the reverse"
    );
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
        // And each route really exists: a request to it never hits the catch-all 404 page.
        let concrete = path
            .replace("{reference}", "DSR-0000-0000")
            .replace("{id}", "x")
            .replace("{result_id}", "x")
            .replace("{platform_user_id}", "x")
            .replace("{agent_id}", "x")
            .replace("{request_id}", "x")
            .replace("{subject_request_id}", "x");
        let res = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::NOT_FOUND {
            let body: Value = res.json().await.unwrap();
            assert_ne!(
                body["error"]["message"], "未找到该资源",
                "{method} {path} fell through to the catch-all"
            );
        }
    }
}
on_both_backends!(the_openapi_document_lists_every_route);

async fn concurrent_decisions_on_one_request_do_not_both_win(app: TestApp) {
    let (_, r1) = app.staff("r1", Role::Reviewer).await;
    let (_, r2) = app.staff("r2", Role::Reviewer).await;
    let sub = app.submit("correction", "cn").await;
    let view = app.find(&r1, &sub.reference).await;
    let id = view["id"].as_str().unwrap().to_owned();
    let verified = app.staff_check(&r1, &id).await;
    let v = verified["version"].clone();
    let approve = app.act(
        &r1,
        &id,
        json!({ "command": "approve", "expected_version": v }),
    );
    let reject = app.act(&r2, &id, json!({ "command": "reject", "reason": "excessive", "explanation": "重复请求", "expected_version": v }));
    let (a, b) = tokio::join!(approve, reject);
    let statuses = [a.status(), b.status()];
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    let loser = if a.status() == StatusCode::OK { b } else { a };
    let (status, code) = error_code(loser).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(code == "stale_version" || code == "busy", "{code}");
    let after = app.staff_get(&r1, &id).await;
    assert_eq!(
        after["version"],
        v.as_i64().unwrap() + 1,
        "exactly one decision was recorded"
    );
}
on_both_backends!(concurrent_decisions_on_one_request_do_not_both_win);
