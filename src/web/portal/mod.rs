//! The self-service portal: server-rendered pages (Handlebars under `templates/portal/`) in
//! Chinese and English for the people whose data it is. No account: a request is opened by a
//! one-time code or the emailed link, which sets the session cookie the API uses too.
//! Works without JavaScript; see docs/PORTAL.md.

pub mod assets;
pub mod csrf;
pub mod forms;
pub mod page;
pub mod pages;

pub use pages::rate_limited_page;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(assets::routes)
        .route("/", web::get().to(pages::home))
        .route("/start", web::get().to(pages::start))
        .route("/rights/{kind}", web::get().to(pages::form))
        .route("/rights/{kind}", web::post().to(pages::submit))
        .route("/find", web::get().to(pages::find_form))
        .route("/find", web::post().to(pages::find))
        .route("/sign-out", web::post().to(pages::sign_out))
        .route("/requests/{reference}", web::get().to(pages::show))
        .route(
            "/requests/{reference}/verify",
            web::get().to(pages::verify_form),
        )
        .route(
            "/requests/{reference}/verify",
            web::post().to(pages::verify),
        )
        .route(
            "/requests/{reference}/resend",
            web::post().to(pages::resend),
        )
        .route(
            "/requests/{reference}/confirmed",
            web::get().to(pages::confirmed),
        )
        .route(
            "/requests/{reference}/results/{id}",
            web::get().to(pages::result),
        )
        .route("/requests/{reference}/reply", web::post().to(pages::reply))
        .route(
            "/requests/{reference}/withdraw",
            web::post().to(pages::withdraw),
        );
}
