//! The portal's static files (one stylesheet, one small script), embedded in the binary and
//! served under a name that carries a hash of their content, so a browser may keep them for a
//! year and still never sees a stale copy after an upgrade.

use std::sync::OnceLock;

use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "templates/static/"]
struct Static;

pub struct Asset {
    /// `portal.css` -> `portal.3f2a9c1d.css`
    pub hashed_name: String,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

fn assets() -> &'static Vec<Asset> {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        Static::iter()
            .filter_map(|name| {
                let file = Static::get(&name)?;
                let (stem, ext) = name.rsplit_once('.')?;
                let digest = Sha256::digest(&file.data);
                let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                let content_type = match ext {
                    "css" => "text/css; charset=utf-8",
                    "js" => "text/javascript; charset=utf-8",
                    "png" => "image/png",
                    _ => "application/octet-stream",
                };
                Some(Asset {
                    hashed_name: format!("{stem}.{short}.{ext}"),
                    bytes: file.data.into_owned(),
                    content_type,
                })
            })
            .collect()
    })
}

/// The URL of an asset by its plain name (`portal.css`), for the page templates.
pub fn url(name: &str) -> String {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    assets()
        .iter()
        .find(|a| {
            a.hashed_name.starts_with(&format!("{stem}."))
                && a.hashed_name.ends_with(&format!(".{ext}"))
        })
        .map(|a| format!("/static/{}", a.hashed_name))
        .unwrap_or_else(|| format!("/static/{name}"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{name}", web::get().to(serve));
}

async fn serve(name: web::Path<String>) -> HttpResponse {
    match assets().iter().find(|a| a.hashed_name == *name) {
        Some(a) => HttpResponse::Ok()
            .content_type(a.content_type)
            .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(a.bytes.clone()),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found"),
    }
}
