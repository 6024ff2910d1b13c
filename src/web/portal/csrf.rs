//! CSRF protection for the portal's forms: a double-submit token. A random value lives in an
//! HttpOnly, SameSite=Strict cookie and in a hidden field of every form; a POST is accepted only
//! when both are present and equal. Stateless, so any instance can check any form. (The session
//! cookie is SameSite=Strict too; the token also covers the forms used before a session exists.)

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use rand::Rng;

use crate::web::error::ApiError;

pub const COOKIE: &str = "rf_csrf";
pub const FIELD: &str = "csrf";

/// The token this visitor's forms carry, and whether the cookie must be (re)set.
pub fn token(req: &HttpRequest) -> (String, bool) {
    match req.cookie(COOKIE).map(|c| c.value().to_owned()) {
        Some(v) if v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric()) => (v, false),
        _ => (fresh(), true),
    }
}

fn fresh() -> String {
    let mut rng = rand::rng();
    (0..43)
        .map(|_| {
            let i = rng.random_range(0..62u8);
            char::from(match i {
                0..=9 => b'0' + i,
                10..=35 => b'a' + i - 10,
                _ => b'A' + i - 36,
            })
        })
        .collect()
}

pub fn cookie(value: &str) -> Cookie<'static> {
    Cookie::build(COOKIE, value.to_owned())
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .finish()
}

/// True when the form's token matches the cookie (compared in constant time).
pub fn check(req: &HttpRequest, submitted: Option<&str>) -> bool {
    let (Some(cookie), Some(submitted)) = (req.cookie(COOKIE), submitted) else {
        return false;
    };
    cookie.value().len() == 43 && crate::auth::equal(cookie.value(), submitted)
}

/// The answer to a form whose token is missing or wrong (portal and console alike).
pub fn error() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        "csrf_failed",
        "表单已过期或来源不明，请返回上一页刷新后重新提交",
        "The form has expired or did not come from this site; go back, reload the page and send it again",
    )
}
