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

#[derive(RustEmbed)]
#[folder = "templates/"]
struct Embedded;

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
        if let Some(dir) = override_dir.filter(|d| d.is_dir()) {
            t.register_dir(dir, dir)?;
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

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .plain
            .get_templates()
            .keys()
            .chain(self.html.get_templates().keys())
            .cloned()
            .collect();
        names.sort();
        names
    }
}
