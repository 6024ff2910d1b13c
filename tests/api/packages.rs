//! The portability package through the whole application, on SQLite and PostgreSQL: an
//! approved portability request becomes a ZIP (JSON and CSV per system, a manifest whose
//! checksums hold), read back with an independent ZIP reader; its bytes are sealed at rest
//! (what the database holds is not the package), and they are purged when the link expires.

use std::io::Read;

use diesel::prelude::*;
use rightsflow::domain::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fulfilment::{approve_deletion, wait_for_status};
use crate::helpers::TestApp;
use crate::on_both_backends;

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file in the archive, by name.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut body = vec![];
            f.read_to_end(&mut body).unwrap();
            (f.name().to_owned(), body)
        })
        .collect()
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .1
}

/// The sealed chunks the database holds, as stored.
pub(crate) fn stored_chunks(app: &TestApp) -> Vec<Vec<u8>> {
    use rightsflow::storage::schema::result_chunks;
    let mut conn = app.services.db().conn().unwrap();
    result_chunks::table
        .select(result_chunks::bytes)
        .load(&mut *conn)
        .unwrap()
}

async fn an_approved_portability_request_becomes_a_sealed_package(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let sub = app.submit("portability", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    approve_deletion(&app, &admin, &reviewer, &id).await;
    wait_for_status(&app, &admin, &id, "completed").await;

    let results = format!("/api/v1/requests/{}/results", sub.reference);
    let list: Value = app.get_with(&results, &session).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let meta = &items[0];
    assert_eq!(meta["file_name"], format!("{}-package.zip", sub.reference));
    assert_eq!(meta["content_type"], "application/zip");
    let res = app
        .get_with(
            &format!("{results}/{}", meta["id"].as_str().unwrap()),
            &session,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-length"].to_str().unwrap(),
        meta["size"].to_string()
    );
    let bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(hex(&bytes), meta["sha256"].as_str().unwrap());

    let files = unzip(&bytes);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.txt",
            "schema/system.schema.json",
            "systems/weimacms-demo.json",
            "systems/weimacms-demo/orders.csv",
            "manifest.json"
        ],
        "only the category asked for (orders)"
    );
    // The manifest's checksums and sizes are those of the files.
    let manifest: Value = serde_json::from_slice(file(&files, "manifest.json")).unwrap();
    assert_eq!(manifest["format"], "rightsflow-package/1");
    assert_eq!(manifest["reference"], sub.reference.as_str());
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len() - 1);
    for f in listed {
        let body = file(&files, f["name"].as_str().unwrap());
        assert_eq!(f["sha256"], hex(body), "{f}");
        assert_eq!(f["size"], body.len(), "{f}");
    }
    assert_eq!(
        manifest["systems"][0]["tables"],
        json!([{ "table": "orders", "rows": 2 }])
    );
    // JSON: Li Lei's two orders, nobody else's, with each column's category.
    let system: Value = serde_json::from_slice(file(&files, "systems/weimacms-demo.json")).unwrap();
    assert_eq!(system["format"], "rightsflow-package/1");
    let orders = &system["tables"][0];
    assert_eq!(orders["table"], "orders");
    assert_eq!(orders["categories"]["order_no"], "orders");
    let numbers: Vec<&str> = orders["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["WM20260301001", "WM20260512002"]);
    // CSV: the same rows, a header, UTF-8 with a BOM.
    let csv = String::from_utf8(file(&files, "systems/weimacms-demo/orders.csv").to_vec()).unwrap();
    assert!(csv.starts_with('\u{feff}'), "{csv}");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].contains("order_no"), "{csv}");
    assert!(lines[1].contains("WM20260301001"), "{csv}");
    assert!(!csv.contains("WM20260420003"), "another user's order");
    assert!(
        String::from_utf8_lossy(file(&files, "README.txt")).contains("个人信息"),
        "a Chinese-first readme for a Chinese request"
    );

    // At rest: what the database holds is sealed, not the package.
    let chunks = stored_chunks(&app);
    assert!(!chunks.is_empty());
    for c in &chunks {
        assert!(!c.windows(4).any(|w| w == b"PK\x03\x04"), "a ZIP in clear");
    }

    // When the link has expired the bytes are purged; the row stays as evidence.
    let services = app.services.clone();
    let purged = tokio::task::spawn_blocking(move || {
        let later = rightsflow::service::now() + chrono::Duration::days(8);
        rightsflow::service::results::purge_expired(&services, later).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(purged, 1);
    assert!(stored_chunks(&app).is_empty());
}
on_both_backends!(
    an_approved_portability_request_becomes_a_sealed_package,
    |c| c.fulfilment.demo_platform = true
);

const NEWCO_SECRET: &str = "newco-shared-secret-0123456789abcdefgh";

/// The subject has the package sent to another processor: streamed to it, signed, whole.
async fn the_package_is_sent_to_the_processor_the_subject_chose(backend: crate::helpers::Backend) {
    let newco = crate::smtp::HttpCapture::start().await;
    let url = newco.url();
    let Some(app) = crate::helpers::spawn_app_with(backend, move |c| {
        c.fulfilment.demo_platform = true;
        c.fulfilment.destinations = vec![rightsflow::config::SystemConfig {
            label: Some("新公司 / NewCo".into()),
            connector: rightsflow::config::ConnectorKind::Http,
            url: Some(rightsflow::config::Secret::new(url)),
            dataset: None,
            secrets: vec![rightsflow::config::Secret::new(NEWCO_SECRET)],
            ..rightsflow::config::SystemConfig::sql("newco", "", "".into())
        }];
    })
    .await
    else {
        return crate::helpers::skip("packages::the_package_is_sent");
    };
    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let submit = |destination: &str| {
        let body = json!({
            "kind": "portability", "jurisdiction": "eu",
            "subject": { "name": "李雷", "email": "li.lei@example.com" },
            "details": { "categories": ["orders"], "format": "json", "destination": destination },
        });
        let (client, url) = (app.client.clone(), app.url("/api/v1/requests"));
        async move { client.post(url).json(&body).send().await.unwrap() }
    };
    // Only a registered destination.
    let res = submit("https://evil.example/collect").await;
    assert_eq!(
        crate::helpers::error_code(res).await,
        (
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_destination".to_owned()
        )
    );
    let res = submit("newco").await;
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let reference = res.json::<Value>().await.unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = app.verify_by_code(&reference).await;
    let id = app.id_of(&admin, &reference).await;
    approve_deletion(&app, &admin, &reviewer, &id).await;
    let done = wait_for_status(&app, &admin, &id, "completed").await;
    assert!(
        done.to_string().contains("新公司 / NewCo"),
        "the completion says where it goes"
    );
    let sent = newco.wait_for(1, 10).await;
    let header = |name: &str| {
        sent[0]
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let body = newco.raw.lock().unwrap()[0].clone();
    // What arrived is the package, whole: its checksum is the signed one and the subject's.
    let list: Value = app
        .get_with(&format!("/api/v1/requests/{reference}/results"), &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hex(&body), list["items"][0]["sha256"].as_str().unwrap());
    assert_eq!(header("x-rightsflow-content-sha256"), hex(&body));
    assert_eq!(
        rightsflow::auth::signing::verify(
            &[NEWCO_SECRET.to_owned()],
            Some(&header("x-rightsflow-timestamp")),
            Some(&header("x-rightsflow-signature")),
            &hex(&body),
            chrono::Utc::now().timestamp(),
        ),
        Ok(())
    );
    assert_eq!(header("content-type"), "application/zip");
    let files = unzip(&body);
    assert!(files
        .iter()
        .any(|(n, _)| n == "systems/weimacms-demo/orders.csv"));
    // The event log says where it went.
    let mut noted = false;
    for _ in 0..50 {
        let view = app.staff_get(&admin, &id).await;
        if view
            .to_string()
            .contains("portability package sent to 新公司 / NewCo")
        {
            noted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(noted);
}

#[tokio::test]
async fn the_package_is_sent_to_the_processor_the_subject_chose_on_sqlite() {
    the_package_is_sent_to_the_processor_the_subject_chose(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test]
async fn the_package_is_sent_to_the_processor_the_subject_chose_on_postgres() {
    the_package_is_sent_to_the_processor_the_subject_chose(crate::helpers::Backend::Postgres).await;
}
