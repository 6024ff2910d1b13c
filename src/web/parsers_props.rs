//! Property tests for every parser of outside input (#8): references, contact details, request
//! details and whole submission bodies, staff tokens, dataset descriptions, the fulfilment
//! callback's answer and its signature, and the NUL check at the door. Each parser must never
//! panic, whatever it is given, and what it accepts must read back as itself. They live here,
//! at the edge where that input arrives; every parser tested is public in its own module.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::auth::signing::{self, SignatureError};
use crate::auth::token::TokenKeys;
use crate::domain::details::{AccessFormat, Consent, DataCategory, RestrictionGround};
use crate::domain::{
    Channel, EmailAddress, Locale, PhoneNumber, Reference, RequestDetails, RequestKind, Role,
    SubjectContact,
};
use crate::fulfilment::dataset::Dataset;
use crate::fulfilment::http::{parse_answer, Answer};
use crate::web::nul::{json_has_nul, urlencoded_has_nul};
use crate::web::submission::SubmitBody;

/// A few hundred cases each: the whole suite stays fast.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, nested a few levels: what a hostile client can put in a body.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        // The words the parsers look for, so that random bodies get past their first checks.
        prop::sample::select(vec![
            "access",
            "account",
            "orders",
            "json",
            "csv",
            "page",
            "done",
            "refused",
            "categories",
            "scope",
            "objection",
            "tables",
            "rows",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(vec![
            "kind",
            "subject",
            "email",
            "phone",
            "name",
            "details",
            "categories",
            "format",
            "scope",
            "fields",
            "field",
            "corrected_value",
            "processing",
            "ground",
            "consents",
            "account",
            "status",
            "result",
            "reason",
            "tables",
            "table",
            "rows",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// Text a person could type: non-blank after trimming, up to a few dozen characters of any
/// script.
fn typed_text() -> impl Strategy<Value = String> {
    "[^\\x00]{0,5}[a-zA-Z0-9一-龥][^\\x00]{0,30}"
}

fn some_of<T: Clone + std::fmt::Debug>(all: &'static [T]) -> impl Strategy<Value = Vec<T>> {
    prop::sample::subsequence(all.to_vec(), 1..=all.len())
}

fn names<T: Copy>(items: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
    items.iter().map(|v| f(*v)).collect()
}

/// Valid details for each kind, built from the documented values.
fn valid_details() -> impl Strategy<Value = (RequestKind, Value)> {
    let categories =
        || some_of(DataCategory::ALL).prop_map(|c| json!(names(&c, DataCategory::as_str)));
    prop_oneof![
        (
            categories(),
            prop::sample::select(AccessFormat::ALL.to_vec())
        )
            .prop_map(|(c, f)| (
                RequestKind::Access,
                json!({ "categories": c, "format": f.as_str() })
            )),
        (categories(), prop::sample::select(vec!["json", "csv"])).prop_map(|(c, f)| (
            RequestKind::Portability,
            json!({ "categories": c, "format": f })
        )),
        categories().prop_map(|c| (
            RequestKind::Deletion,
            json!({ "scope": "categories", "categories": c })
        )),
        Just((RequestKind::Deletion, json!({ "scope": "account" }))),
        (typed_text(), typed_text()).prop_map(|(field, value)| (
            RequestKind::Correction,
            json!({ "fields": [{ "field": field, "corrected_value": value }] })
        )),
        (
            typed_text(),
            prop::sample::select(RestrictionGround::ALL.to_vec())
        )
            .prop_map(|(p, g)| (
                RequestKind::Restriction,
                json!({ "processing": p, "ground": g.as_str() })
            )),
        some_of(Consent::ALL).prop_map(|c| (
            RequestKind::ConsentWithdrawal,
            json!({ "consents": names(&c, Consent::as_str) })
        )),
        (typed_text(), typed_text()).prop_map(|(s, a)| (
            RequestKind::Complaint,
            json!({ "subject": s, "account": a })
        )),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_reference_parses_to_itself_in_any_spelling(
        symbols in "[0-9A-HJKMNP-TV-Z]{8}",
        lower in any::<bool>(),
        dashes in any::<bool>(),
        prefix in any::<bool>(),
    ) {
        let canonical = format!("DSR-{}-{}", &symbols[..4], &symbols[4..]);
        let mut typed = if dashes { canonical.clone() } else { canonical.replace('-', "") };
        if !prefix {
            typed = typed.trim_start_matches("DSR").trim_start_matches('-').to_owned();
        }
        if lower {
            typed = typed.to_lowercase();
        }
        let parsed = Reference::parse(&typed).unwrap();
        prop_assert_eq!(parsed.as_str(), canonical.as_str());
        prop_assert_eq!(Reference::parse(parsed.as_str()).unwrap(), parsed);
    }

    #[test]
    fn any_text_as_a_reference_is_read_or_refused_and_what_is_read_is_canonical(raw in ".{0,40}") {
        if let Ok(r) = Reference::parse(&raw) {
            prop_assert_eq!(Reference::parse(r.as_str()).unwrap(), r.clone());
            prop_assert!(r.as_str().len() == 13 && r.as_str().starts_with("DSR-"));
        }
    }

    #[test]
    fn contact_details_are_read_once_and_then_stay_as_they_are(
        // Capitals of other scripts too: some lower-case to more than one character.
        email in "(.{0,20}@.{0,20}|[a-z0-9.+_-]{1,20}@[a-zA-Z0-9İΣẞΩ-]{1,15}(\\.[a-zA-Z]{2,6}){0,2})",
        phone in "(.{0,20}|[+]?(00)?[0-9 ().-]{5,20})",
        name in ".{0,210}",
    ) {
        if let Ok(e) = EmailAddress::parse(&email) {
            prop_assert_eq!(EmailAddress::parse(e.as_str()).unwrap(), e);
        }
        if let Ok(p) = PhoneNumber::parse(&phone) {
            prop_assert_eq!(PhoneNumber::parse(p.as_str()).unwrap(), p.clone());
            prop_assert!(p.as_str().starts_with('+'));
        }
        let _ = SubjectContact::new(Some(&name), Some(&email), Some(&phone));
    }

    #[test]
    fn valid_details_of_every_kind_read_back_as_themselves((kind, details) in valid_details()) {
        let parsed = RequestDetails::parse(kind, details).unwrap();
        prop_assert_eq!(RequestDetails::parse(kind, parsed.to_json()).unwrap(), parsed);
    }

    #[test]
    fn any_json_as_details_of_any_kind_is_read_or_refused(
        kind in prop::sample::select(RequestKind::ALL.to_vec()),
        details in any_json(),
    ) {
        if let Ok(parsed) = RequestDetails::parse(kind, details) {
            prop_assert_eq!(RequestDetails::parse(kind, parsed.to_json()).unwrap(), parsed);
        }
    }

    #[test]
    fn any_submission_body_is_read_or_refused(body in any_json(), staff in any::<bool>()) {
        if let Ok(submit) = serde_json::from_value::<SubmitBody>(body) {
            let channel = if staff { Channel::Phone } else { Channel::Online };
            let _ = submit.parse(Locale::ZhCn, channel);
        }
    }

    #[test]
    fn a_staff_token_verifies_only_as_issued(
        staff_id in "[a-f0-9-]{1,36}",
        role in prop::sample::select(Role::ALL.to_vec()),
        position in any::<prop::sample::Index>(),
        replacement in any::<char>(),
        garbage in ".{0,200}",
    ) {
        let keys = TokenKeys::new(b"a property-test secret of 32+ bytes!", Duration::minutes(60)).unwrap();
        let token = keys.issue(&staff_id, role, Utc::now()).unwrap();
        let claims = keys.verify(&token).unwrap();
        prop_assert_eq!((claims.sub.as_str(), claims.role), (staff_id.as_str(), role));
        // One character changed anywhere (but in the signature's last, whose low bits base64
        // may not carry) is refused; so is any other text.
        let mut chars: Vec<char> = token.chars().collect();
        let i = position.index(chars.len() - 1);
        if chars[i] != replacement {
            chars[i] = replacement;
            let altered: String = chars.into_iter().collect();
            prop_assert!(keys.verify(&altered).is_err(), "{}", altered);
        }
        prop_assert!(keys.verify(&garbage).is_err());
        let other = TokenKeys::new(b"another secret, also of 32+ bytes", Duration::minutes(60)).unwrap();
        prop_assert!(other.verify(&token).is_err());
    }

    #[test]
    fn any_text_as_a_dataset_description_is_read_or_refused(text in ".{0,300}") {
        let _ = Dataset::parse(&text);
    }

    #[test]
    fn the_demo_description_with_one_byte_changed_is_read_or_refused(
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = DEMO_DATASET.as_bytes().to_vec();
        let i = position.index(bytes.len());
        bytes[i] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = Dataset::parse(&text);
        }
    }

    #[test]
    fn any_callback_body_is_read_or_refused(
        body in prop_oneof![".{0,200}", any_json().prop_map(|v| v.to_string())],
        action in prop::sample::select(vec!["access", "deletion", "correction", "restriction"]),
    ) {
        let _ = parse_answer(&body, action);
    }

    #[test]
    fn valid_answers_read_back(reason in typed_text(), rows in prop::collection::vec(any::<i64>(), 0..5)) {
        let refused = json!({ "status": "refused", "reason": reason }).to_string();
        prop_assert_eq!(parse_answer(&refused, "deletion").unwrap(), Answer::Refused(reason.clone()));
        let result = json!({ "tables": [{ "table": "orders", "categories": { "id": "orders" }, "rows": rows.iter().map(|r| json!({ "id": r })).collect::<Vec<_>>() }] });
        let done = json!({ "status": "done", "result": result }).to_string();
        prop_assert_eq!(parse_answer(&done, "access").unwrap(), Answer::Done(result));
    }

    #[test]
    fn only_the_signature_of_the_very_body_verifies(
        body in ".{0,200}",
        other in ".{0,200}",
        skew in -600i64..600,
        timestamp in ".{0,20}",
        signature in ".{0,80}",
    ) {
        let secrets = vec!["an old secret of the system".to_owned(), "the system's new secret".to_owned()];
        let now = 1_800_000_000;
        let ts = now - skew;
        let signed = signing::signature(&secrets[1], ts, &body);
        let checked = signing::verify(&secrets, Some(&ts.to_string()), Some(&signed), &body, now);
        if skew.abs() > signing::MAX_SKEW_SECONDS {
            prop_assert_eq!(checked, Err(SignatureError::Stale));
        } else {
            prop_assert_eq!(checked, Ok(()));
            if other != body {
                let forged = signing::verify(&secrets, Some(&ts.to_string()), Some(&signed), &other, now);
                prop_assert_eq!(forged, Err(SignatureError::Mismatch));
            }
        }
        // Whatever the headers hold, the answer is a refusal, never a panic.
        let _ = signing::verify(&secrets, Some(&timestamp), Some(&signature), &body, now);
        prop_assert!(signing::verify(&secrets, None, Some(&signed), &body, now).is_err());
    }

    #[test]
    fn the_nul_check_sees_exactly_the_nuls_a_json_text_holds(text in "(.|\\x00|\\\\|u0000){0,30}") {
        let encoded = serde_json::to_string(&text).unwrap();
        prop_assert_eq!(json_has_nul(encoded.as_bytes()), text.contains('\0'), "{}", encoded);
        let as_key = serde_json::to_string(&json!({ text.clone(): 1 })).unwrap();
        prop_assert_eq!(json_has_nul(as_key.as_bytes()), text.contains('\0'));
    }

    #[test]
    fn the_nul_check_sees_exactly_the_nuls_a_form_holds(text in "(.|\\x00|%|00){0,30}") {
        let encoded: String = text
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect();
        prop_assert_eq!(urlencoded_has_nul(encoded.as_bytes()), text.contains('\0'), "{}", encoded);
    }
}

/// The demo platform's description, a real one to mutate.
const DEMO_DATASET: &str = include_str!("../fulfilment/demo/platform.toml");

#[test]
fn the_demo_description_itself_is_read() {
    assert!(Dataset::parse(DEMO_DATASET).is_ok());
}

/// Valid staff claims signed with the right key but already past their expiry are refused
/// (the library's leeway is 5 seconds; an hour is well past it).
#[test]
fn an_expired_staff_token_is_refused() {
    let keys = TokenKeys::new(
        b"a property-test secret of 32+ bytes!",
        Duration::minutes(60),
    )
    .unwrap();
    let issued: DateTime<Utc> = Utc::now() - Duration::minutes(120);
    let token = keys.issue("someone", Role::Admin, issued).unwrap();
    assert!(keys.verify(&token).is_err());
}
