//! The request forms: one per kind, asking only what that kind needs. Each form is described
//! here once (sections of fields); the same description renders the page, keeps the visitor's
//! input after an error, and turns a posted form into the API's submission body, so the
//! portal and the JSON API share every rule after that.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::page::word;
use crate::domain::{
    EmailAddress, FreeText, Locale, PhoneNumber, Reference, Relationship, RequestKind,
};
use crate::web::submission::{SubjectBody, SubmitBody};

/// How a field is entered; choices name a list of options in the strings (`options.{list}`).
#[derive(Debug, Clone, Copy)]
enum Input {
    Text,
    Email,
    Tel,
    Date,
    Textarea,
    Select(&'static str, &'static [&'static str]),
    Radios(&'static str, &'static [&'static str]),
    Checks(&'static str, &'static [&'static str]),
    /// One checkbox the visitor must tick ("I understand").
    Confirm,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    input: Input,
    required: bool,
    /// The strings key of its label and hint (`fields.{key}`); several correction rows share one.
    key: &'static str,
    default: Option<&'static str>,
}

const fn field(name: &'static str, input: Input, required: bool) -> Field {
    Field {
        name,
        input,
        required,
        key: name,
        default: None,
    }
}

const fn keyed(name: &'static str, key: &'static str, input: Input, required: bool) -> Field {
    Field {
        name,
        input,
        required,
        key,
        default: None,
    }
}

const fn with_default(mut f: Field, value: &'static str) -> Field {
    f.default = Some(value);
    f
}

struct Section {
    /// `sections.{key}` in the strings: the legend, and an optional note.
    key: &'static str,
    fields: &'static [Field],
}

const CATEGORIES: &[&str] = &[
    "account",
    "identity",
    "orders",
    "browsing_history",
    "search_history",
    "location",
    "device",
    "content",
];
const CONSENTS: &[&str] = &[
    "personalised_recommendations",
    "partner_sharing",
    "location_services",
    "marketing_messages",
];
const GROUNDS: &[&str] = &[
    "disputed_accuracy",
    "unlawful_processing",
    "objection",
    "no_longer_needed",
    "other",
];
const PROFILE_FIELDS: &[&str] = &[
    "name",
    "gender",
    "birth_date",
    "phone",
    "email",
    "address",
    "interests",
    "other",
];
const JURISDICTIONS: &[&str] = &["cn", "eu", "us-ca"];

const ACCESS: &[Section] = &[Section {
    key: "access",
    fields: &[
        field("categories", Input::Checks("categories", CATEGORIES), true),
        with_default(
            field(
                "format",
                Input::Radios("formats", &["page", "json", "csv"]),
                true,
            ),
            "page",
        ),
    ],
}];

const fn correction_row(n: usize, required: bool) -> [Field; 3] {
    const NAMES: [[&str; 3]; 3] = [
        ["field_1", "current_1", "corrected_1"],
        ["field_2", "current_2", "corrected_2"],
        ["field_3", "current_3", "corrected_3"],
    ];
    [
        keyed(
            NAMES[n][0],
            "field",
            Input::Select("profile_fields", PROFILE_FIELDS),
            required,
        ),
        keyed(NAMES[n][1], "current", Input::Text, false),
        keyed(NAMES[n][2], "corrected", Input::Text, required),
    ]
}
const ROW_1: [Field; 3] = correction_row(0, true);
const ROW_2: [Field; 3] = correction_row(1, false);
const ROW_3: [Field; 3] = correction_row(2, false);
const CORRECTION: &[Section] = &[
    Section {
        key: "correction_1",
        fields: &ROW_1,
    },
    Section {
        key: "correction_2",
        fields: &ROW_2,
    },
    Section {
        key: "correction_3",
        fields: &ROW_3,
    },
    Section {
        key: "evidence",
        fields: &[field("evidence", Input::Textarea, false)],
    },
];

const DELETION: &[Section] = &[Section {
    key: "deletion",
    fields: &[
        field(
            "scope",
            Input::Radios("scopes", &["account", "categories"]),
            true,
        ),
        keyed(
            "categories",
            "deletion_categories",
            Input::Checks("categories", CATEGORIES),
            false,
        ),
        field("understand", Input::Confirm, true),
    ],
}];

const RESTRICTION: &[Section] = &[Section {
    key: "restriction",
    fields: &[
        field("processing", Input::Textarea, true),
        field("ground", Input::Radios("grounds", GROUNDS), true),
        field("explanation", Input::Textarea, false),
    ],
}];

const PORTABILITY: &[Section] = &[Section {
    key: "portability",
    fields: &[
        field("categories", Input::Checks("categories", CATEGORIES), true),
        with_default(
            keyed(
                "format",
                "portable_format",
                Input::Radios("formats", &["json", "csv"]),
                true,
            ),
            "json",
        ),
        field("recipient", Input::Text, false),
    ],
}];

const CONSENT: &[Section] = &[Section {
    key: "consent_withdrawal",
    fields: &[field("consents", Input::Checks("consents", CONSENTS), true)],
}];

const COMPLAINT: &[Section] = &[Section {
    key: "complaint",
    fields: &[
        field("subject", Input::Text, true),
        field("account", Input::Textarea, true),
        field("related_reference", Input::Text, false),
    ],
}];

const CONTACT: Section = Section {
    key: "contact",
    fields: &[
        field("name", Input::Text, false),
        field("email", Input::Email, false),
        field("phone", Input::Tel, false),
        with_default(
            field(
                "jurisdiction",
                Input::Select("jurisdictions", JURISDICTIONS),
                true,
            ),
            "cn",
        ),
    ],
};

const GUARDIAN: Section = Section {
    key: "guardian",
    fields: &[field("birth_date", Input::Date, true)],
};

fn kind_sections(kind: RequestKind) -> &'static [Section] {
    match kind {
        RequestKind::Access => ACCESS,
        RequestKind::Correction => CORRECTION,
        RequestKind::Deletion => DELETION,
        RequestKind::Restriction => RESTRICTION,
        RequestKind::Portability => PORTABILITY,
        RequestKind::ConsentWithdrawal => CONSENT,
        RequestKind::Complaint => COMPLAINT,
    }
}

fn sections(kind: RequestKind, rep: Option<Relationship>) -> Vec<&'static Section> {
    let mut all: Vec<&Section> = kind_sections(kind).iter().collect();
    if rep == Some(Relationship::Guardian) {
        all.push(&GUARDIAN);
    }
    all.push(&CONTACT);
    all
}

/// A posted form: name/value pairs in order (checkbox groups repeat a name).
pub struct Posted(pub Vec<(String, String)>);

impl Posted {
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
            .collect()
    }
}

/// Errors by field name; `_form` for one that belongs to no field.
pub type FieldErrors = BTreeMap<String, String>;

/// The form as the template draws it: sections of fields with labels, hints, options, the
/// visitor's values and any error beside the field it is about.
pub fn view(
    kind: RequestKind,
    rep: Option<Relationship>,
    locale: Locale,
    posted: Option<&Posted>,
    errors: &FieldErrors,
) -> Value {
    let t = |k: &str| word(locale, k);
    let sections: Vec<Value> = sections(kind, rep)
        .into_iter()
        .map(|section| {
            let fields: Vec<Value> = section
                .fields
                .iter()
                .map(|f| field_view(f, locale, posted, errors))
                .collect();
            json!({
                "legend": t(&format!("sections.{}.legend", section.key)),
                "note": t(&format!("sections.{}.note", section.key)),
                "warning": t(&format!("sections.{}.warning", section.key)),
                "fields": fields,
            })
        })
        .collect();
    let summary: Vec<Value> = errors
        .iter()
        .map(|(name, message)| {
            let label = if name == "_form" {
                String::new()
            } else {
                label_of(name, locale)
            };
            json!({ "anchor": if name == "_form" { "main".to_owned() } else { format!("f-{name}") }, "label": label, "message": message })
        })
        .collect();
    json!({ "sections": sections, "errors": summary, "form_error": errors.get("_form") })
}

fn find_field(name: &str) -> Option<&'static Field> {
    [
        ACCESS,
        CORRECTION,
        DELETION,
        RESTRICTION,
        PORTABILITY,
        CONSENT,
        COMPLAINT,
    ]
    .iter()
    .flat_map(|s| s.iter())
    .chain([&CONTACT, &GUARDIAN])
    .flat_map(|s| s.fields.iter())
    .find(|f| f.name == name)
}

fn label_of(name: &str, locale: Locale) -> String {
    find_field(name)
        .map(|f| word(locale, &format!("fields.{}.label", f.key)))
        .unwrap_or_default()
}

fn field_view(f: &Field, locale: Locale, posted: Option<&Posted>, errors: &FieldErrors) -> Value {
    let t = |k: &str| word(locale, k);
    let value = match posted {
        Some(p) => p.one(f.name).unwrap_or_default().to_owned(),
        None => f.default.unwrap_or_default().to_owned(),
    };
    let chosen: Vec<String> = match posted {
        Some(p) => p.all(f.name).into_iter().map(str::to_owned).collect(),
        None => f.default.map(str::to_owned).into_iter().collect(),
    };
    let (kind, options) = match f.input {
        Input::Text => ("text", vec![]),
        Input::Email => ("email", vec![]),
        Input::Tel => ("tel", vec![]),
        Input::Date => ("date", vec![]),
        Input::Textarea => ("textarea", vec![]),
        Input::Confirm => ("confirm", vec![]),
        Input::Select(list, values) => ("select", options(list, values, &chosen, locale)),
        Input::Radios(list, values) => ("radios", options(list, values, &chosen, locale)),
        Input::Checks(list, values) => ("checks", options(list, values, &chosen, locale)),
    };
    let autocomplete = match f.name {
        "name" => "name",
        "email" => "email",
        "phone" => "tel",
        _ => "off",
    };
    let hint = t(&format!("fields.{}.hint", f.key));
    let error = errors.get(f.name);
    let id = format!("f-{}", f.name);
    let describedby: Vec<String> = [
        (!hint.is_empty()).then(|| format!("{id}-hint")),
        error.map(|_| format!("{id}-error")),
    ]
    .into_iter()
    .flatten()
    .collect();
    json!({
        "name": f.name,
        "id": id,
        "describedby": describedby.join(" "),
        "type": kind,
        "label": t(&format!("fields.{}.label", f.key)),
        "hint": hint,
        "required": f.required,
        "value": value,
        "checked": !chosen.is_empty(),
        "options": options,
        "error": error,
        "autocomplete": autocomplete,
        "multiline": matches!(f.input, Input::Textarea),
    })
}

fn options(list: &str, values: &[&str], chosen: &[String], locale: Locale) -> Vec<Value> {
    values
        .iter()
        .map(|v| {
            json!({
                "value": v,
                "label": word(locale, &format!("options.{list}.{v}")),
                "checked": chosen.iter().any(|c| c == v),
            })
        })
        .collect()
}

/// Checks the posted form field by field and builds the submission body. Every mistake is
/// reported against its field, in the visitor's language.
pub fn parse(
    kind: RequestKind,
    rep: Option<Relationship>,
    locale: Locale,
    p: &Posted,
) -> Result<SubmitBody, FieldErrors> {
    let mut errors = FieldErrors::new();
    let msg = |k: &str| word(locale, &format!("errors.{k}"));
    for section in sections(kind, rep) {
        for f in section.fields {
            let given = p.all(f.name);
            if f.required && given.is_empty() {
                let key = match f.input {
                    Input::Checks(..) => "choose_one",
                    Input::Radios(..) | Input::Select(..) => "choose",
                    Input::Confirm => "confirm",
                    _ => "required",
                };
                errors.insert(f.name.to_owned(), msg(key));
                continue;
            }
            let allowed = match f.input {
                Input::Select(_, v) | Input::Radios(_, v) | Input::Checks(_, v) => Some(v),
                _ => None,
            };
            if let Some(allowed) = allowed {
                if given.iter().any(|g| !allowed.contains(g)) {
                    errors.insert(f.name.to_owned(), msg("unknown_option"));
                }
            } else if given.iter().any(|g| FreeText::parse(g).is_err()) {
                errors.insert(f.name.to_owned(), msg("too_long"));
            }
        }
    }
    // Rules that join fields.
    if kind == RequestKind::Deletion
        && p.one("scope") == Some("categories")
        && p.all("categories").is_empty()
    {
        errors.insert("categories".into(), msg("choose_one"));
    }
    if kind == RequestKind::Correction {
        for n in 2..=3 {
            let (fname, corrected) = (format!("field_{n}"), format!("corrected_{n}"));
            match (p.one(&fname), p.one(&corrected)) {
                (Some(_), None) => {
                    errors.insert(corrected, msg("required"));
                }
                (None, Some(_)) => {
                    errors.insert(fname, msg("choose"));
                }
                _ => {}
            }
        }
    }
    if kind == RequestKind::Complaint {
        if let Some(r) = p.one("related_reference") {
            if Reference::parse(r).is_err() {
                errors.insert("related_reference".into(), msg("bad_reference"));
            }
        }
    }
    match (p.one("email"), p.one("phone")) {
        (None, None) => {
            errors.insert("email".into(), msg("no_contact"));
        }
        (email, phone) => {
            if email.is_some_and(|e| EmailAddress::parse(e).is_err()) {
                errors.insert("email".into(), msg("bad_email"));
            }
            if phone.is_some_and(|p| PhoneNumber::parse(p).is_err()) {
                errors.insert("phone".into(), msg("bad_phone"));
            }
        }
    }
    if p.one("birth_date")
        .is_some_and(|d| d.parse::<chrono::NaiveDate>().is_err())
    {
        errors.insert("birth_date".into(), msg("bad_date"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SubmitBody {
        kind: kind.as_str().to_owned(),
        jurisdiction: p.one("jurisdiction").map(str::to_owned),
        locale: Some(locale.as_str().to_owned()),
        subject: SubjectBody {
            name: p.one("name").map(str::to_owned),
            email: p.one("email").map(str::to_owned),
            phone: p.one("phone").map(str::to_owned),
            birth_date: p.one("birth_date").and_then(|d| d.parse().ok()),
        },
        details: details(kind, p),
        received_at: None,
        channel: None,
        representative: rep.map(|r| r.as_str().to_owned()),
    })
}

/// The kind's details as the API takes them.
fn details(kind: RequestKind, p: &Posted) -> Value {
    let list = |name: &str| Value::from(p.all(name));
    let opt = |name: &str| p.one(name).map_or(Value::Null, Value::from);
    match kind {
        RequestKind::Access => json!({ "categories": list("categories"), "format": opt("format") }),
        RequestKind::Correction => {
            let fields: Vec<Value> = (1..=3)
                .filter_map(|n| {
                    let field = p.one(&format!("field_{n}"))?;
                    let mut m = Map::new();
                    m.insert("field".into(), field.into());
                    m.insert("current_value".into(), opt(&format!("current_{n}")));
                    m.insert("corrected_value".into(), opt(&format!("corrected_{n}")));
                    Some(Value::Object(m))
                })
                .collect();
            json!({ "fields": fields, "evidence": opt("evidence") })
        }
        RequestKind::Deletion => {
            let scope = p.one("scope").unwrap_or("account");
            let categories = if scope == "categories" {
                list("categories")
            } else {
                json!([])
            };
            json!({ "scope": scope, "categories": categories })
        }
        RequestKind::Restriction => {
            json!({ "processing": opt("processing"), "ground": opt("ground"), "explanation": opt("explanation") })
        }
        RequestKind::Portability => {
            json!({ "categories": list("categories"), "format": opt("format"), "recipient": opt("recipient") })
        }
        RequestKind::ConsentWithdrawal => json!({ "consents": list("consents") }),
        RequestKind::Complaint => {
            json!({ "subject": opt("subject"), "account": opt("account"), "related_reference": opt("related_reference") })
        }
    }
}

/// Which field an error from the shared submission rules belongs to.
pub fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_contact" => "email",
        "minor_needs_guardian" => "birth_date",
        "unknown_jurisdiction" => "jurisdiction",
        _ => "_form",
    }
}

// The option lists above must name exactly the core's values: a test checks it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::details::{AccessFormat, Consent, DataCategory, RestrictionGround};

    #[test]
    fn option_lists_match_the_core() {
        for c in CATEGORIES {
            assert!(c.parse::<DataCategory>().is_ok(), "{c}");
        }
        for c in CONSENTS {
            assert!(c.parse::<Consent>().is_ok(), "{c}");
        }
        for g in GROUNDS {
            assert!(g.parse::<RestrictionGround>().is_ok(), "{g}");
        }
        for f in ["page", "json", "csv"] {
            assert!(f.parse::<AccessFormat>().is_ok(), "{f}");
        }
    }
}
