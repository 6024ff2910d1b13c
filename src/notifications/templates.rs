//! Message templates: Handlebars in strict mode (a missing variable is an error, never an empty
//! hole in a letter), one set per message, audience and locale, embedded in the binary and
//! overridable file by file from a folder.
//!
//! Layout under `templates/`:
//! - `email/{locale}/{subject|staff}/{message}.subject.hbs`, `.txt.hbs`, `.html.hbs`
//! - `email/{locale}/partials/{header,footer}.html.hbs`, used as `{{> header}}`, `{{> footer}}`
//! - `sms/{locale}/{message}.hbs`

use std::path::Path;

use handlebars::Handlebars;
use rust_embed::RustEmbed;
use serde_json::Value;

use crate::domain::Locale;

/// Everything under `templates/`, compiled in (the pages' words and assets are read from here
/// too).
#[derive(RustEmbed)]
#[folder = "templates/"]
pub(crate) struct Embedded;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("rendering {name}: {message}")]
    Render { name: String, message: String },
    #[error("no template {0}")]
    Missing(String),
    #[error("reading the template folder {path}: {message}")]
    Folder { path: String, message: String },
}

/// Who a message is for: the folder its templates sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Subject,
    Staff,
}

impl Audience {
    fn folder(self) -> &'static str {
        match self {
            Audience::Subject => "subject",
            Audience::Staff => "staff",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    /// HTML bodies: values are HTML-escaped.
    html: Handlebars<'static>,
    /// Subjects, plain-text bodies and SMS: values go in as they are.
    plain: Handlebars<'static>,
}

/// Partials are per locale but templates call them by their short name; the locale is folded
/// into the name at registration (`{{> header}}` in `email/en/…` means `en_header`).
fn partial_name(locale: &str, short: &str) -> String {
    format!("{}_{short}", locale.replace('-', "_"))
}

fn localise_partials(locale: &str, text: &str) -> String {
    ["header", "footer"]
        .iter()
        .fold(text.to_owned(), |t, short| {
            t.replace(
                &format!("{{{{> {short}}}}}"),
                &format!("{{{{> {}}}}}", partial_name(locale, short)),
            )
        })
}

impl Templates {
    /// The embedded templates, then any `*.hbs` under `override_dir` with the same relative
    /// path (an operator's wording) or a new one.
    pub fn load(override_dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut t = Templates {
            html: Handlebars::new(),
            plain: Handlebars::new(),
        };
        t.html.set_strict_mode(true);
        t.plain.set_strict_mode(true);
        t.plain.register_escape_fn(handlebars::no_escape);
        for path in Embedded::iter().filter(|p| p.ends_with(".hbs")) {
            if let Some(file) = Embedded::get(&path) {
                t.register(&path, &String::from_utf8_lossy(&file.data))?;
            }
        }
        match override_dir {
            Some(dir) if dir.is_dir() => t.register_dir(dir, dir)?,
            Some(dir) => {
                tracing::warn!(folder = %dir.display(), "the templates folder does not exist; using the built-in templates")
            }
            None => {}
        }
        Ok(t)
    }

    fn register_dir(&mut self, root: &Path, dir: &Path) -> Result<(), TemplateError> {
        let folder_error = |e: std::io::Error| TemplateError::Folder {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(folder_error)?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                self.register_dir(root, &path)?;
            } else if path.extension().is_some_and(|e| e == "hbs") {
                let text = std::fs::read_to_string(&path).map_err(folder_error)?;
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                self.register(&relative, &text)?;
            }
        }
        Ok(())
    }

    fn register(&mut self, path: &str, text: &str) -> Result<(), TemplateError> {
        let name = path.trim_end_matches(".hbs");
        let invalid = |e: handlebars::TemplateError| TemplateError::Invalid {
            name: name.to_owned(),
            message: e.to_string(),
        };
        let parts: Vec<&str> = name.split('/').collect();
        match parts.as_slice() {
            ["email", locale, "partials", partial] => {
                let short = partial.trim_end_matches(".html");
                self.html
                    .register_partial(
                        &partial_name(locale, short),
                        localise_partials(locale, text),
                    )
                    .map_err(invalid)
            }
            // The pages' partials, named by area: `{{> portal_layout}}`, `{{> console_field}}`.
            [area @ ("portal" | "console"), "partials", partial] => self
                .html
                .register_partial(
                    &format!("{area}_{}", partial.trim_end_matches(".html")),
                    text,
                )
                .map_err(invalid),
            ["email", locale, ..] if name.ends_with(".html") => self
                .html
                .register_template_string(name, localise_partials(locale, text))
                .map_err(invalid),
            _ if name.ends_with(".html") => self
                .html
                .register_template_string(name, text)
                .map_err(invalid),
            _ => self
                .plain
                .register_template_string(name, text)
                .map_err(invalid),
        }
    }

    fn render(
        registry: &Handlebars<'static>,
        name: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        if !registry.has_template(name) {
            return Err(TemplateError::Missing(name.to_owned()));
        }
        registry
            .render(name, ctx)
            .map_err(|e| TemplateError::Render {
                name: name.to_owned(),
                message: e.to_string(),
            })
    }

    pub fn render_email(
        &self,
        locale: Locale,
        audience: Audience,
        message: &str,
        ctx: &Value,
    ) -> Result<RenderedEmail, TemplateError> {
        let base = format!("email/{}/{}/{message}", locale.as_str(), audience.folder());
        let subject = Self::render(&self.plain, &format!("{base}.subject"), ctx)?;
        Ok(RenderedEmail {
            // A subject is one line whatever the template's trailing newline.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: Self::render(&self.plain, &format!("{base}.txt"), ctx)?
                .trim()
                .to_owned()
                + "\n",
            html: Self::render(&self.html, &format!("{base}.html"), ctx)?,
        })
    }

    pub fn render_sms(
        &self,
        locale: Locale,
        message: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let text = Self::render(
            &self.plain,
            &format!("sms/{}/{message}", locale.as_str()),
            ctx,
        )?;
        Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// Renders a page template (e.g. `dev/mail`), HTML-escaped.
    pub fn render_page(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        Self::render(&self.html, name, ctx)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::domain::{Jurisdiction, Message, RequestKind};
    use crate::notifications::context::VARIABLES;

    const SUBJECT: [Message; 12] = [
        Message::Received,
        Message::VerificationCode,
        Message::Verified,
        Message::InfoRequested,
        Message::Extended,
        Message::Approved,
        Message::Completed,
        Message::ComplaintAnswered,
        Message::Rejected,
        Message::Withdrawn,
        Message::Expired,
        Message::RestrictionLifting,
    ];
    const STAFF: [Message; 8] = [
        Message::ReviewNeeded,
        Message::Assigned,
        Message::SecondApprovalNeeded,
        Message::ReplyReceived,
        Message::Withdrawn,
        Message::DueSoon,
        Message::Overdue,
        Message::Reminder,
    ];

    /// A context with every variable: all optional ones null, or all filled.
    fn context(kind: RequestKind, jurisdiction: Jurisdiction, filled: bool) -> Value {
        let mut ctx = Map::new();
        for name in VARIABLES {
            ctx.insert(name.to_owned(), Value::Null);
        }
        let always = json!({
            "app_name": "WEIMACMS", "base_url": "https://privacy.example", "reference": "DSR-7K2Q-9XPM",
            "kind": kind.as_str(), "kind_label": kind.label_zh(), "jurisdiction": jurisdiction.as_str(),
            "request_url": "https://privacy.example/requests/DSR-7K2Q-9XPM", "console_url": "https://privacy.example/console/requests/x",
        });
        ctx.extend(always.as_object().cloned().unwrap_or_default());
        if filled {
            let optional = json!({
                "subject_name": "李雷", "due_date": "2026-10-23", "due_ends_at": "2026-10-23 23:59:59 (Asia/Shanghai)",
                "question": "请提供证明", "reason": "涉及多个系统", "previous_due_date": "2026-10-01",
                "reason_code": "no_data_held", "reason_label": "我们未持有您的个人信息", "explanation": "查无此人",
                "summary": "已处理", "code": "123456", "minutes_valid": 15, "working_days_left": 2, "lift_date": "2026-12-01",
            });
            ctx.extend(optional.as_object().cloned().unwrap_or_default());
        }
        Value::Object(ctx)
    }

    #[test]
    fn every_message_renders_in_both_languages_for_every_kind_and_jurisdiction() {
        let t = Templates::load(None).unwrap();
        for locale in [Locale::ZhCn, Locale::En] {
            for kind in RequestKind::ALL {
                for jurisdiction in Jurisdiction::ALL {
                    for filled in [false, true] {
                        let ctx = context(*kind, *jurisdiction, filled);
                        let sets = SUBJECT
                            .iter()
                            .map(|m| (Audience::Subject, m))
                            .chain(STAFF.iter().map(|m| (Audience::Staff, m)));
                        for (audience, message) in sets {
                            let mail = t.render_email(locale, audience, message.as_str(), &ctx);
                            let mail = mail.unwrap_or_else(|e| {
                                panic!("{locale} {audience:?} {message} {kind} {jurisdiction}: {e}")
                            });
                            assert!(
                                mail.subject.contains("DSR-7K2Q-9XPM"),
                                "{message}: {}",
                                mail.subject
                            );
                            assert!(
                                mail.text.contains("DSR-7K2Q-9XPM")
                                    && mail.html.contains("DSR-7K2Q-9XPM")
                            );
                            assert!(
                                mail.html.starts_with("<!DOCTYPE html>")
                                    || mail.html.contains("<html"),
                                "{message}"
                            );
                            let chinese = mail
                                .text
                                .chars()
                                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
                            // English bodies may quote Chinese values (the filled context is Chinese).
                            assert!(
                                locale == Locale::En || chinese,
                                "{locale} {message} is not in Chinese"
                            );
                        }
                        for message in SUBJECT {
                            let sms = t
                                .render_sms(locale, message.as_str(), &ctx)
                                .unwrap_or_else(|e| panic!("sms {message}: {e}"));
                            let limit = if locale == Locale::ZhCn { 70 } else { 160 };
                            assert!(
                                sms.chars().count() <= limit || filled,
                                "{locale} sms {message} too long: {sms}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn html_escapes_values_and_text_does_not() {
        let t = Templates::load(None).unwrap();
        let mut ctx = context(RequestKind::Access, Jurisdiction::Cn, true);
        ctx["question"] = json!("<script>alert(1)</script> & “引号”");
        let mail = t
            .render_email(Locale::ZhCn, Audience::Subject, "info_requested", &ctx)
            .unwrap();
        assert!(mail.text.contains("<script>alert(1)</script> & “引号”"));
        assert!(!mail.html.contains("<script>") && mail.html.contains("&lt;script&gt;"));
    }

    #[test]
    fn a_missing_variable_fails_loudly_and_overrides_replace_built_in_wording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("email/en/subject");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("request_received.subject.hbs"),
            "Got it: {{reference}}",
        )
        .unwrap();
        std::fs::write(
            path.join("request_withdrawn.subject.hbs"),
            "Bye {{no_such_variable}}",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let ctx = context(RequestKind::Access, Jurisdiction::Cn, false);
        let mail = t
            .render_email(Locale::En, Audience::Subject, "request_received", &ctx)
            .unwrap();
        assert_eq!(mail.subject, "Got it: DSR-7K2Q-9XPM");
        let err = t
            .render_email(Locale::En, Audience::Subject, "request_withdrawn", &ctx)
            .unwrap_err();
        assert!(err.to_string().contains("no_such_variable"), "{err}");
        // An unknown message is an error too, not an empty letter.
        assert!(matches!(
            t.render_email(Locale::En, Audience::Subject, "nonsense", &ctx),
            Err(TemplateError::Missing(_))
        ));
        // A template that does not parse stops loading with its name.
        std::fs::write(path.join("broken.txt.hbs"), "{{#if x}}unclosed").unwrap();
        let err = Templates::load(Some(dir.path())).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }
}
