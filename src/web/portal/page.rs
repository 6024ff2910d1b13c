//! What every portal page shares: its language (switch, cookie, `Accept-Language`), the
//! visitor's time zone, the CSRF token, the words in `templates/portal/strings/`, the layout,
//! and the security headers.

use std::sync::OnceLock;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::{assets, csrf};
use crate::domain::Locale;
use crate::notifications::templates::Embedded;
use crate::notifications::Notifier;
use crate::web::extract::header_locale;

pub const LANG_COOKIE: &str = "rf_lang";
/// Set by the portal's script from the browser's time zone; absent without JavaScript.
pub const TZ_COOKIE: &str = "rf_tz";
/// Without a known zone, dates are shown in China Standard Time, the platform's own.
pub const DEFAULT_TZ: Tz = chrono_tz::Asia::Shanghai;

/// No inline script or style, nothing from another origin, no framing, no referrer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The two sets of pages: the subjects' portal and the staff console. Each has its templates and
/// words under `templates/{area}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Portal,
    Console,
}

impl Area {
    pub fn folder(self) -> &'static str {
        match self {
            Area::Portal => "portal",
            Area::Console => "console",
        }
    }
}

/// The words of the portal in one language, from `templates/portal/strings/{locale}.toml`.
pub fn strings(locale: Locale) -> &'static Value {
    area_strings(Area::Portal, locale)
}

/// The words of an area's pages in one language, from `templates/{area}/strings/{locale}.toml`.
pub fn area_strings(area: Area, locale: Locale) -> &'static Value {
    static CELLS: [OnceLock<Value>; 4] = [const { OnceLock::new() }; 4];
    let index = match (area, locale) {
        (Area::Portal, Locale::ZhCn) => 0,
        (Area::Portal, Locale::En) => 1,
        (Area::Console, Locale::ZhCn) => 2,
        (Area::Console, Locale::En) => 3,
    };
    CELLS[index].get_or_init(|| {
        let file = Embedded::get(&format!(
            "{}/strings/{}.toml",
            area.folder(),
            locale.as_str()
        ));
        let text = file.map(|f| String::from_utf8_lossy(&f.data).into_owned());
        match text.as_deref().map(toml::from_str::<Value>) {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                tracing::error!(error = %e, "portal strings do not parse");
                Value::Null
            }
            None => Value::Null,
        }
    })
}

/// Looks up `a.b.c` in the portal's strings (empty when missing; the strings test checks none
/// are).
pub fn word(locale: Locale, path: &str) -> String {
    word_in(Area::Portal, locale, path)
}

pub fn word_in(area: Area, locale: Locale, path: &str) -> String {
    path.split('.')
        .try_fold(area_strings(area, locale), |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// One page view: who is asking, in which language and zone, with which form token.
#[derive(Clone)]
pub struct Page {
    pub area: Area,
    pub locale: Locale,
    pub tz: Tz,
    csrf: String,
    set_csrf: bool,
    set_lang: bool,
    path: String,
    /// The page's query without `lang`, ready for the switch links (`for=guardian&`).
    keep_query: String,
    /// Only a GET page may be reloaded by the script (a reload would post a form again), and
    /// only one that shows times (elsewhere the zone is simply kept for the next page, and a
    /// reload could wipe what the visitor has begun to type).
    reloadable: bool,
    /// The signed-in staff member on console pages (null elsewhere).
    user: Value,
    shows_times: bool,
}

impl Page {
    /// A portal page.
    pub fn new(req: &HttpRequest) -> Page {
        Page::in_area(req, Area::Portal)
    }

    /// A console page.
    pub fn console(req: &HttpRequest) -> Page {
        Page::in_area(req, Area::Console)
    }

    fn in_area(req: &HttpRequest, area: Area) -> Page {
        let switched = web_query(req, "lang").and_then(|l| Locale::parse_loose(&l));
        let locale = switched
            .or_else(|| {
                req.cookie(LANG_COOKIE)
                    .and_then(|c| Locale::parse_loose(c.value()))
            })
            .unwrap_or_else(|| header_locale(req.headers()));
        let tz = req
            .cookie(TZ_COOKIE)
            .and_then(|c| c.value().replace("%2F", "/").parse::<Tz>().ok())
            .unwrap_or(DEFAULT_TZ);
        let (csrf, set_csrf) = csrf::token(req);
        Page {
            area,
            locale,
            tz,
            csrf,
            set_csrf,
            set_lang: switched.is_some(),
            path: req.path().to_owned(),
            keep_query: req
                .query_string()
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("lang="))
                .map(|p| format!("{p}&"))
                .collect(),
            reloadable: req.method() == actix_web::http::Method::GET
                && req.cookie(TZ_COOKIE).is_none(),
            user: Value::Null,
            shows_times: false,
        }
    }

    pub fn t(&self, path: &str) -> String {
        word_in(self.area, self.locale, path)
    }

    /// A page that shows times: on a first visit the script reloads it once, in the visitor's
    /// zone.
    pub fn showing_times(mut self) -> Page {
        self.shows_times = true;
        self
    }

    /// The same page with the signed-in staff member shown in the layout.
    pub fn with_user(mut self, user: Value) -> Page {
        self.user = user;
        self
    }

    /// A phrase with a number in it: `{n}` replaced.
    pub fn count(&self, path: &str, n: i64) -> String {
        self.t(path).replace("{n}", &n.to_string())
    }

    /// A moment in the visitor's zone: `2026年12月18日 14:30` / `18 Dec 2026, 14:30`.
    pub fn time(&self, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.tz);
        match self.locale {
            Locale::ZhCn => local.format("%Y年%-m月%-d日 %H:%M").to_string(),
            Locale::En => local.format("%-d %b %Y, %H:%M").to_string(),
        }
    }

    /// A deadline, prominently: the day with its weekday, and the hour it ends in the
    /// visitor's zone (a deadline is the end of a day in the jurisdiction's own zone).
    pub fn deadline(&self, ends_at: DateTime<Utc>) -> String {
        let local = ends_at.with_timezone(&self.tz);
        let weekday = self.t(&format!(
            "weekdays.{}",
            local.weekday().num_days_from_monday()
        ));
        match self.locale {
            Locale::ZhCn => format!(
                "{} {weekday} {}",
                local.format("%Y年%-m月%-d日"),
                local.format("%H:%M")
            ),
            Locale::En => format!(
                "{weekday} {}, {}",
                local.format("%-d %B %Y"),
                local.format("%H:%M")
            ),
        }
    }

    /// Renders `{area}/{name}` inside the area's layout.
    pub fn render(
        &self,
        notifier: &Notifier,
        status: StatusCode,
        name: &str,
        title: &str,
        page: Value,
    ) -> HttpResponse {
        let ctx = json!({
            "lang": self.locale.as_str(),
            "zh": self.locale == Locale::ZhCn,
            "t": area_strings(self.area, self.locale),
            "title": title,
            "path": self.path,
            "keep_query": self.keep_query,
            "csrf": self.csrf,
            "css": assets::url("portal.css"),
            "js": assets::url("portal.js"),
            "tz": self.tz.name(),
            "reload": self.reloadable && self.shows_times,
            "user": self.user,
            "console_css": assets::url("console.css"),
            "page": page,
        });
        match notifier
            .templates
            .render_page(&format!("{}/{name}.html", self.area.folder()), &ctx)
        {
            Ok(html) => self
                .builder(status)
                .content_type(ContentType::html())
                .body(html),
            Err(e) => {
                tracing::error!(error = %e, "portal page");
                self.builder(StatusCode::INTERNAL_SERVER_ERROR)
                    .content_type(ContentType::plaintext())
                    .body("服务器内部错误 / Internal error")
            }
        }
    }

    /// 303 See Other (after a form post), keeping the page's cookies.
    pub fn redirect(&self, location: &str) -> HttpResponse {
        self.builder(StatusCode::SEE_OTHER)
            .insert_header((header::LOCATION, location.to_owned()))
            .finish()
    }

    /// A response with the security headers and the cookies this view must (re)set.
    pub fn builder(&self, status: StatusCode) -> HttpResponseBuilder {
        let mut b = HttpResponse::build(status);
        secure(&mut b);
        if self.set_csrf {
            b.cookie(csrf::cookie(&self.csrf));
        }
        if self.set_lang {
            b.cookie(
                Cookie::build(LANG_COOKIE, self.locale.as_str())
                    .path("/")
                    .http_only(true)
                    .same_site(SameSite::Lax)
                    .max_age(actix_web::cookie::time::Duration::days(365))
                    .finish(),
            );
        }
        b
    }
}

/// The headers every page carries.
pub fn secure(b: &mut HttpResponseBuilder) {
    b.insert_header(("Content-Security-Policy", CSP))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-store"));
}

pub fn web_query(req: &HttpRequest, key: &str) -> Option<String> {
    actix_web::web::Query::<std::collections::HashMap<String, String>>::from_query(
        req.query_string(),
    )
    .ok()
    .and_then(|q| q.get(key).cloned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::{Relationship, RequestKind};
    use crate::web::portal::{forms, pages::KINDS};

    fn keys(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    keys(&path, v, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }

    fn all_keys(area: Area, locale: Locale) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        keys("", area_strings(area, locale), &mut out);
        out
    }

    #[test]
    fn both_languages_have_the_same_words() {
        for area in [Area::Portal, Area::Console] {
            let (zh, en) = (all_keys(area, Locale::ZhCn), all_keys(area, Locale::En));
            assert!(zh.len() > 200, "{area:?} strings load: {}", zh.len());
            assert_eq!(
                zh.symmetric_difference(&en).collect::<Vec<_>>(),
                Vec::<&String>::new()
            );
            for locale in [Locale::ZhCn, Locale::En] {
                for k in all_keys(area, locale) {
                    let optional =
                        k.ends_with(".hint") || k.ends_with(".note") || k.ends_with(".warning");
                    let empty = word_in(area, locale, &k).is_empty();
                    assert!(optional || !empty, "{area:?} {locale:?} {k} is empty");
                }
            }
        }
    }

    /// Every `t.…` a page template names exists (strict mode would fail the page otherwise).
    #[test]
    fn every_word_a_template_uses_exists() {
        for area in [Area::Portal, Area::Console] {
            let known = all_keys(area, Locale::ZhCn);
            let mut used = 0;
            let prefix = format!("{}/", area.folder());
            for name in Embedded::iter().filter(|n| n.starts_with(&prefix) && n.ends_with(".hbs")) {
                let data = Embedded::get(&name)
                    .map(|f| f.data.into_owned())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&data);
                // `{{t.x.y}}`, `{{#if t.x}}`, `{{@root.t.x.y}}`: a `t.` after `{`, space or `root.`.
                for (at, _) in text.match_indices("t.") {
                    let before = &text[..at];
                    if !(before.ends_with('{')
                        || before.ends_with(' ')
                        || before.ends_with("@root."))
                    {
                        continue;
                    }
                    let key: String = text[at + 2..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                        .collect();
                    assert!(
                        known.contains(&key),
                        "{name} uses t.{key}, which no strings file has"
                    );
                    used += 1;
                }
            }
            assert!(
                used > 50,
                "{area:?}: found the words the templates use: {used}"
            );
        }
    }

    /// Every word the console's code looks up by a value (status, command, method…) exists.
    #[test]
    fn every_console_word_built_from_a_value_exists() {
        use crate::domain::{Channel, Jurisdiction, Role, Status, VerificationMethod};
        let commands = [
            "submit",
            "verify",
            "verification_failed",
            "expire",
            "request_info",
            "subject_reply",
            "assign",
            "approve",
            "reject",
            "extend",
            "start_fulfilment",
            "complete",
            "withdraw",
            "note",
        ];
        let details = [
            "categories",
            "format",
            "fields",
            "evidence",
            "scope",
            "processing",
            "ground",
            "explanation",
            "recipient",
            "consents",
            "subject",
            "account",
            "related_reference",
        ];
        for locale in [Locale::ZhCn, Locale::En] {
            let mut wanted: Vec<String> = vec![];
            wanted.extend(
                Status::ALL
                    .iter()
                    .map(|v| format!("statuses.{}", v.as_str())),
            );
            wanted.extend(
                VerificationMethod::ALL
                    .iter()
                    .map(|v| format!("methods.{}", v.as_str())),
            );
            wanted.extend(Role::ALL.iter().map(|v| format!("roles.{}", v.as_str())));
            wanted.extend(
                Channel::ALL
                    .iter()
                    .map(|v| format!("channels.{}", v.as_str())),
            );
            wanted.extend(
                Relationship::ALL
                    .iter()
                    .map(|v| format!("representatives.{}", v.as_str())),
            );
            wanted.extend(
                Jurisdiction::ALL
                    .iter()
                    .map(|v| format!("jurisdictions.{}", v.as_str())),
            );
            wanted.extend(commands.iter().map(|c| format!("commands.{c}")));
            wanted.extend(details.iter().map(|d| format!("details.{d}")));
            for k in wanted {
                assert!(
                    !word_in(Area::Console, locale, &k).is_empty(),
                    "{locale:?} {k}"
                );
            }
        }
    }

    /// Every label, option and heading the forms and pages build from the strings is there.
    #[test]
    fn every_form_label_and_option_has_words_in_both_languages() {
        for locale in [Locale::ZhCn, Locale::En] {
            for kind in KINDS {
                for k in ["title", "summary", "intro"] {
                    assert!(!word(locale, &format!("kinds.{}.{k}", kind.as_str())).is_empty());
                }
                for rep in [
                    None,
                    Some(Relationship::Guardian),
                    Some(Relationship::Relative),
                    Some(Relationship::Agent),
                ] {
                    let view = forms::view(kind, rep, locale, None, &forms::FieldErrors::new());
                    for section in view["sections"].as_array().into_iter().flatten() {
                        assert!(
                            !section["legend"].as_str().unwrap_or_default().is_empty(),
                            "{kind:?} legend"
                        );
                        for f in section["fields"].as_array().into_iter().flatten() {
                            assert!(
                                !f["label"].as_str().unwrap_or_default().is_empty(),
                                "{kind:?} {}",
                                f["name"]
                            );
                            for o in f["options"].as_array().into_iter().flatten() {
                                assert!(
                                    !o["label"].as_str().unwrap_or_default().is_empty(),
                                    "{kind:?} {} {}",
                                    f["name"],
                                    o["value"]
                                );
                            }
                        }
                    }
                }
            }
            for r in ["guardian", "relative", "agent"] {
                assert!(!word(locale, &format!("representatives.{r}.note")).is_empty());
            }
            for e in [
                "submit",
                "verify",
                "expire",
                "withdraw",
                "approve",
                "request_info",
                "subject_reply",
                "reject",
                "extend",
                "complete",
            ] {
                assert!(
                    !word(locale, &format!("events.{e}")).is_empty(),
                    "event {e}"
                );
            }
            for d in 0..7 {
                assert!(!word(locale, &format!("weekdays.{d}")).is_empty());
            }
            let _ = RequestKind::Access;
        }
    }
}
