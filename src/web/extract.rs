//! Request extractors: the caller's language, and the signed-in staff member.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::error::{blocking, ApiError};
use crate::domain::{Actor, Locale};
use crate::service::{staff, Services};

/// The language `Accept-Language` prefers (Chinese when absent or unsupported).
pub fn header_locale(headers: &header::HeaderMap) -> Locale {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Locale::negotiate)
        .unwrap_or_default()
}

/// A page's language: the `?lang=` switch first, then `Accept-Language`.
pub fn page_locale(req: &HttpRequest) -> Locale {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("lang").and_then(|l| Locale::parse_loose(l)))
        .unwrap_or_else(|| header_locale(req.headers()))
}

/// The language to answer in, from `Accept-Language` (Chinese when absent or unsupported).
#[derive(Debug, Clone, Copy)]
pub struct RequestLocale(pub Locale);

impl FromRequest for RequestLocale {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(RequestLocale(header_locale(req.headers()))))
    }
}

/// A staff member authenticated by `Authorization: Bearer <jwt>`, read fresh from the database.
#[derive(Debug, Clone)]
pub struct StaffActor(pub Actor);

impl FromRequest for StaffActor {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        let services = req.app_data::<web::Data<Services>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(services)) = (token, services) else {
                return Err(ApiError::unauthorized());
            };
            let actor = blocking(move || staff::authenticate(&services, &token)).await?;
            Ok(StaffActor(actor))
        })
    }
}

/// The subject's session: `Authorization: Bearer <session>` (API clients) or the portal's
/// session cookie (opened by a code, a magic link or a platform sign-in).
#[derive(Debug, Clone)]
pub struct SubjectToken(pub String);

impl FromRequest for SubjectToken {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SubjectToken(t.to_owned()))
            .or_else(|| {
                req.cookie(super::subject::SESSION_COOKIE)
                    .map(|c| c.value().to_owned())
                    .filter(|v| !v.is_empty())
                    .map(SubjectToken)
            });
        ready(session.ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "subject_auth_required",
                "请先验证身份（输入验证码或使用邮件中的链接）后再查看请求",
                "Verify your identity first (enter the code or use the link we sent) to see this request",
            )
        }))
    }
}
