//! Time-based one-time passwords (RFC 6238) for the staff second factor: the six-digit codes
//! of any authenticator app (HMAC-SHA1, 30-second steps, the secret shared as base32), and the
//! QR code an app scans to enrol.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The length of one step: a code is good for this long (plus the drift allowed below).
pub const STEP_SECONDS: i64 = 30;
/// Steps either side of now that are accepted: phones' clocks drift and people type slowly.
const DRIFT_STEPS: i64 = 1;
const DIGITS: u32 = 6;
/// 160 bits, the size RFC 4226 recommends for HMAC-SHA1.
const SECRET_BYTES: usize = 20;

/// A new random secret, as the base32 text (no padding) authenticator apps take.
pub fn generate_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    data_encoding::BASE32_NOPAD.encode(&bytes)
}

fn decode(secret: &str) -> Option<Vec<u8>> {
    let cleaned: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(cleaned.as_bytes()).ok()
}

/// The step a Unix time falls in.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code for one step of a key (RFC 4226's dynamic truncation), `digits` long.
fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

/// The six-digit code of a base32 secret at a step; None for a secret that is not base32.
pub fn code_at(secret: &str, step: i64) -> Option<String> {
    let key = decode(secret)?;
    Some(hotp(&key, u64::try_from(step).ok()?, DIGITS))
}

/// The step whose code was typed, if it matches now (± one step) and comes after
/// `after` (the last step used: a code works once). Every candidate is compared, in constant
/// time, so the time taken says nothing about which one matched.
pub fn matching_step(secret: &str, typed: &str, unix_now: i64, after: Option<i64>) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_now);
    let mut found = None;
    for step in now - DRIFT_STEPS..=now + DRIFT_STEPS {
        let code = code_at(secret, step)?;
        if super::equal(&code, &typed) && after.is_none_or(|a| step > a) {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` address an authenticator app reads from the QR code.
pub fn otpauth_uri(secret: &str, issuer: &str, account: &str) -> String {
    let enc = |s: &str| crate::percent::encode(s, b"");
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The QR code of `text` as an SVG element (dark modules as one path; no style attribute, so
/// the pages' content security policy allows it inline).
pub fn qr_svg(text: &str, title: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let width = code.width();
    let quiet = 4;
    let size = width + 2 * quiet;
    let mut path = String::new();
    for (i, colour) in code.to_colors().iter().enumerate() {
        if *colour == qrcode::Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"220\" height=\"220\" role=\"img\" aria-label=\"{t}\" shape-rendering=\"crispEdges\"><title>{t}</title><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>",
        t = esc(title)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 key, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc_6238_test_vectors() {
        // (time, the RFC's eight-digit value): six digits are its last six.
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let key = decode(RFC_SECRET).unwrap();
            assert_eq!(hotp(&key, step_of(t) as u64, 8), eight, "t={t}");
            assert_eq!(code_at(RFC_SECRET, step_of(t)).unwrap(), &eight[2..]);
        }
    }

    #[test]
    fn a_code_matches_within_one_step_and_only_once() {
        let secret = generate_secret();
        let now = 1_800_000_000;
        let step = step_of(now);
        let code = code_at(&secret, step).unwrap();
        assert_eq!(matching_step(&secret, &code, now, None), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 30, None), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 60, None), None);
        // Used once: the same step (or an earlier one) is refused.
        assert_eq!(matching_step(&secret, &code, now, Some(step)), None);
        let next = code_at(&secret, step + 1).unwrap();
        assert_eq!(
            matching_step(&secret, &next, now, Some(step)),
            Some(step + 1)
        );
        // Spaces are forgiven; letters and wrong lengths are not.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(&secret, &spaced, now, None), Some(step));
        assert_eq!(matching_step(&secret, "12345", now, None), None);
        assert_eq!(matching_step(&secret, "12a456", now, None), None);
    }

    #[test]
    fn secrets_are_base32_of_160_bits_and_lowercase_is_accepted() {
        let s = generate_secret();
        assert_eq!(s.len(), 32);
        assert_eq!(decode(&s).unwrap().len(), SECRET_BYTES);
        assert_eq!(code_at(&s.to_lowercase(), 7), code_at(&s, 7));
        assert_eq!(code_at("not base32!", 7), None);
    }

    #[test]
    fn the_enrolment_address_and_qr_code() {
        let uri = otpauth_uri("ABC", "Rightsflow", "li.lei@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Rightsflow:li.lei%40example.com?secret=ABC&issuer=Rightsflow&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri, "二维码 <QR>").unwrap();
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>二维码 &lt;QR&gt;</title>"));
        assert!(!svg.contains("style="));
    }
}
