//! Results routes: staff attach an access report or portability export to a request; the
//! subject lists and downloads it through their session (API here, portal link in portal/).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::{blocking, ApiError};
use super::extract::{StaffActor, SubjectToken};
use crate::domain::Reference;
use crate::service::results::{self, NewResult, MAX_BYTES};
use crate::service::{now, requests, Services};
use crate::storage::from_db_time;
use crate::storage::results::{ResultMeta, StoredResult};

/// The kinds of file a result may be: readable report, data exports, an archive.
const CONTENT_TYPES: [&str; 5] = [
    "text/html",
    "text/csv",
    "application/json",
    "application/zip",
    "text/plain",
];

pub fn staff_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/staff/requests/{id}/results")
            .app_data(web::PayloadConfig::new(MAX_BYTES))
            .route(web::post().to(attach)),
    );
}

pub fn subject_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/requests/{reference}/results", web::get().to(list))
        .route(
            "/requests/{reference}/results/{id}",
            web::get().to(download),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachQuery {
    file_name: String,
}

fn file_name_ok(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[tracing::instrument(skip_all)]
async fn attach(
    req: HttpRequest,
    s: web::Data<Services>,
    who: StaffActor,
    path: web::Path<String>,
    query: web::Query<AttachQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let file_name = query.into_inner().file_name;
    if !file_name_ok(&file_name) {
        return Err(ApiError::invalid(
            "invalid_file_name",
            "文件名只能包含字母、数字、点、下划线和连字符（最多 100 个字符），且不能以点开头",
            "The file name may hold letters, digits, dots, underscores and hyphens (at most 100), not starting with a dot",
        ));
    }
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !CONTENT_TYPES.contains(&essence.as_str()) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "结果文件类型须为 text/html、text/csv、application/json、application/zip 或 text/plain",
            "A result must be text/html, text/csv, application/json, application/zip or text/plain",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::invalid(
            "empty_result",
            "结果文件为空",
            "The result file is empty",
        ));
    }
    let content_type = if essence.starts_with("text/") {
        format!("{essence}; charset=utf-8")
    } else {
        essence
    };
    let new = NewResult {
        file_name,
        content_type,
        body: body.to_vec(),
    };
    let services = s.clone();
    let id = path.into_inner();
    let meta = blocking(move || results::attach(&services, &id, &who.0, new, now())).await?;
    Ok(HttpResponse::Created().json(meta_view(&meta)))
}

pub fn meta_view(m: &ResultMeta) -> serde_json::Value {
    json!({
        "id": m.id,
        "file_name": m.file_name,
        "content_type": m.content_type,
        "size": m.size,
        "sha256": m.sha256,
        "created_at": from_db_time(m.created_at),
        "expires_at": from_db_time(m.expires_at),
        "downloads": m.downloads,
    })
}

fn reference(raw: &str) -> Result<Reference, ApiError> {
    Reference::parse(raw).map_err(|_| ApiError::unauthorized())
}

#[tracing::instrument(skip_all)]
async fn list(
    s: web::Data<Services>,
    path: web::Path<String>,
    token: SubjectToken,
) -> Result<HttpResponse, ApiError> {
    let reference = reference(&path)?;
    let services = s.clone();
    let items = blocking(move || {
        let r = requests::get_for_subject(&services, &reference, &token.0)?;
        results::live(&services, &r, now())
    })
    .await?;
    let items: Vec<_> = items.iter().map(meta_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

#[tracing::instrument(skip_all)]
async fn download(
    s: web::Data<Services>,
    path: web::Path<(String, String)>,
    token: SubjectToken,
) -> Result<HttpResponse, ApiError> {
    let (raw, id) = path.into_inner();
    let reference = reference(&raw)?;
    let services = s.clone();
    let file = blocking(move || {
        let r = requests::get_for_subject(&services, &reference, &token.0)?;
        results::download(&services, &r, &id, now())
    })
    .await?;
    Ok(file_response(&s, file))
}

/// A result's bytes as they are opened, chunk by chunk, from a blocking reader: at most two
/// chunks wait in memory whatever the file's size.
struct ChunkBody {
    size: u64,
    chunks: tokio::sync::mpsc::Receiver<Result<web::Bytes, std::io::Error>>,
}

impl MessageBody for ChunkBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.size)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        self.chunks.poll_recv(cx)
    }
}

/// Streams a result's bytes: a chunk that does not open ends the body early, so the client
/// sees a short (failed) download, never a wrong file.
fn stream(s: &Services, file: StoredResult) -> ChunkBody {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let size = u64::try_from(file.size).unwrap_or_default();
    let services = s.clone();
    tokio::task::spawn_blocking(move || {
        let sent = results::each_chunk(&services, &file, |plain| {
            tx.blocking_send(Ok(web::Bytes::from(plain))).is_ok()
        });
        if let Err(e) = sent {
            tracing::error!(error = %e, "a result could not be read");
            let _ = tx.blocking_send(Err(std::io::Error::other("result unreadable")));
        }
    });
    ChunkBody { size, chunks: rx }
}

/// An HTML report shown in the browser: sandboxed (no script, no requests, no forms; only its
/// own inline style), never cached. The access report is ours and escaped; the sandbox holds
/// for an attached file too.
pub fn inline_response(s: &Services, file: StoredResult) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(file.content_type.clone())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", file.file_name),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            "Content-Security-Policy",
            "sandbox; default-src 'none'; style-src 'unsafe-inline'",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(stream(s, file))
}

/// The file as an attachment: never rendered inside our origin (an HTML report could carry
/// anything), never cached.
pub fn file_response(s: &Services, file: StoredResult) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(file.content_type.clone())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.file_name),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(stream(s, file))
}
