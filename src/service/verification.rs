//! Proving identity and subject sessions: one-time codes (by email or SMS) with a magic link,
//! platform sign-in tokens, and short-lived, revocable sessions for the subject's own request.
//! Answers never say whether a reference or address is known.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{requests, ServiceError, Services};
use crate::auth::token::ISSUER;
use crate::config::PlatformAuth;
use crate::domain::{
    Actor, Command, Message, Recipient, Reference, Status, VerificationFailure, VerificationMethod,
};
use crate::storage::inserts::Writes;
use crate::storage::outbox;
use crate::storage::rows::StoredRequest;
use crate::storage::verification::{self as store, Challenge, SubjectSession};
use crate::storage::{from_db_time, requests as request_store, to_db_time, StoreError};

const SESSION_AUDIENCE: &str = "rightsflow-subject";
const MAGIC_AUDIENCE: &str = "rightsflow-magic-link";

#[derive(Debug, Serialize, Deserialize)]
struct SessionClaims {
    /// The request the session is for.
    sub: String,
    /// The session row (revocation).
    sid: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct MagicClaims {
    /// The challenge the link belongs to.
    sub: String,
    iss: String,
    aud: String,
    exp: i64,
}

/// A session handed to a subject.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub request: StoredRequest,
}

/// Where a code went, for the answer to the subject (never the address itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChannel {
    Email,
    Sms,
}

impl CodeChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeChannel::Email => "email",
            CodeChannel::Sms => "sms",
        }
    }
}

fn code_hash(s: &Services, challenge_id: &str, code: &str) -> String {
    s.tokens()
        .keyed_hash(&format!("{challenge_id}:{}", code.trim()))
}

/// Sends a new one-time code (and a magic link with it) to the contact the request gave, at
/// most once per `resend_seconds`. The code is kept only as a keyed hash; the message carrying
/// it sits in the outbox until sent.
pub fn send_code(
    s: &Services,
    request: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<CodeChannel, ServiceError> {
    let cfg = s.verification();
    let mut conn = s.db().conn()?;
    if let Some(last) = store::latest_challenge(&mut conn, &request.id)? {
        let wait = from_db_time(last.created_at) + Duration::seconds(cfg.resend_seconds) - now;
        if wait > Duration::zero() {
            return Err(ServiceError::TooSoon {
                retry_after: wait.num_seconds().max(1),
            });
        }
    }
    // Sealed under the keys the connection put in scope; the connection is not held while
    // writing (on PostgreSQL the write takes one of its own).
    let code = prepare_code(s, request, now)?;
    drop(conn);
    let channel = code.channel;
    code.writes().write(s.db())?;
    tracing::info!(reference = %request.reference, channel = channel.as_str(), "verification code sent");
    Ok(channel)
}

/// Submits a request and stores its first code in the same transaction. Returns the code's
/// channel, or None when no code could be made (the request is stored all the same, and the
/// subject can ask for another code).
pub fn submit_with_first_code(
    s: &Services,
    new: requests::NewRequest,
    actor: &crate::domain::Actor,
    now: DateTime<Utc>,
) -> Result<(requests::Submitted, Option<CodeChannel>), ServiceError> {
    // The channel of the code the last attempt made: the one stored, if the write succeeds.
    let sent = std::cell::Cell::new(None);
    let submitted = requests::submit_with(s, new, actor, now, |request| {
        let code = prepare_code(s, request, now)
            .map_err(|e| tracing::warn!(error = %e, "could not make the first verification code"))
            .ok();
        sent.set(code.as_ref().map(|c| c.channel));
        code.map(PreparedCode::writes).unwrap_or_default()
    })?;
    let sent = sent.get();
    if let Some(channel) = sent {
        tracing::info!(reference = %submitted.request.reference, channel = channel.as_str(), "verification code sent");
    }
    Ok((submitted, sent))
}

/// A one-time code for a request, made but not yet stored: the challenge (the code's keyed
/// hash) and the notification carrying the code and its magic link.
pub struct PreparedCode {
    challenge: Challenge,
    /// Sealed when the code is made: a submission makes its code before SQLite's one
    /// writer's turn (`write_gate`) and writes it inside.
    notification: outbox::Sealed,
    pub channel: CodeChannel,
}

impl PreparedCode {
    /// The challenge and its notification, to be written in the caller's transaction (a
    /// submission stores its first code in its own).
    pub fn writes(self) -> Writes<'static> {
        let mut writes = Writes::new();
        writes
            .insert(store::challenge_statement(self.challenge))
            .insert(outbox::statement(self.notification));
        writes
    }
}

/// Makes a new code for `request` (no database work).
pub fn prepare_code(
    s: &Services,
    request: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<PreparedCode, ServiceError> {
    let cfg = s.verification();
    let channel = if request.contact.email.is_some() {
        CodeChannel::Email
    } else {
        CodeChannel::Sms
    };
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let id = crate::storage::new_id();
    let expires_at = now + Duration::minutes(cfg.code_minutes);
    let link = s
        .tokens()
        .sign(&MagicClaims {
            sub: id.clone(),
            iss: ISSUER.into(),
            aud: MAGIC_AUDIENCE.into(),
            exp: expires_at.timestamp(),
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let challenge = Challenge {
        id: id.clone(),
        request_id: request.id.clone(),
        channel: channel.as_str().into(),
        code_hash: code_hash(s, &id, &code),
        expires_at: to_db_time(expires_at),
        attempts: 0,
        locked_at: None,
        used_at: None,
        created_at: to_db_time(now),
    };
    let extra = json!({ "code": code, "minutes_valid": cfg.code_minutes, "magic_link": format!("{}/verify?token={link}", s.public_url()) });
    let notification = outbox::notify_row(
        &request.id,
        None,
        &Recipient::Subject,
        Message::VerificationCode,
        request.locale,
        extra,
        now,
    );
    Ok(PreparedCode {
        challenge,
        notification: outbox::sealed(&notification)?,
        channel,
    })
}

/// Resends a code for `reference`. Unknown references get the same answer as known ones.
pub fn resend_code(
    s: &Services,
    reference: &Reference,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    match request_store::find_by_reference(&mut *s.db().conn()?, reference) {
        Ok(r) if !r.state.status.is_final() || r.state.status == Status::Completed => {
            send_code(s, &r, now).map(|_| ())
        }
        Ok(_) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// "Find my request": sends a new code only when `contact` is the email address or phone
/// number the request gave. The caller answers the same whatever happened, so neither the
/// reference nor the contact can be probed.
pub fn resend_code_to(
    s: &Services,
    reference: &Reference,
    contact: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let r = match request_store::find_by_reference(&mut *s.db().conn()?, reference) {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let email = crate::domain::EmailAddress::parse(contact).ok();
    let phone = crate::domain::PhoneNumber::parse(contact).ok();
    // The local part of an address is case-sensitive in theory, never in practice: people
    // type their address as they remember it.
    let email_matches = match (&email, &r.contact.email) {
        (Some(given), Some(stored)) => given.as_str().eq_ignore_ascii_case(stored.as_str()),
        _ => false,
    };
    let matches = email_matches || (phone.is_some() && phone.as_ref() == r.contact.phone.as_ref());
    if !matches || (r.state.status.is_final() && r.state.status != Status::Completed) {
        return Ok(());
    }
    match send_code(s, &r, now) {
        Err(ServiceError::TooSoon { .. }) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Checks a code for `reference`: on success the request is verified (if it was waiting) and a
/// session opens. Wrong codes count towards the lock; every failure is recorded on the request
/// (never the code).
pub fn verify_code(
    s: &Services,
    reference: &Reference,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Session, ServiceError> {
    let mut conn = s.db().conn()?;
    let request = match request_store::find_by_reference(&mut conn, reference) {
        Ok(r) => r,
        Err(StoreError::NotFound) => {
            return Err(ServiceError::WrongCode {
                attempts_left: None,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let challenge =
        store::latest_challenge(&mut conn, &request.id)?.ok_or(ServiceError::WrongCode {
            attempts_left: None,
        })?;
    let method = if challenge.channel == "sms" {
        VerificationMethod::SmsCode
    } else {
        VerificationMethod::EmailCode
    };
    let max = s.verification().max_attempts;
    let failure = if challenge.locked_at.is_some() || challenge.attempts >= max {
        Some((VerificationFailure::Locked, ServiceError::ChallengeLocked))
    } else if challenge.used_at.is_some() {
        Some((
            VerificationFailure::WrongCode,
            ServiceError::WrongCode {
                attempts_left: None,
            },
        ))
    } else if from_db_time(challenge.expires_at) <= now {
        Some((VerificationFailure::Expired, ServiceError::CodeExpired))
    } else if !crate::auth::equal(&code_hash(s, &challenge.id, code), &challenge.code_hash) {
        let attempts = store::count_wrong_attempt(&mut conn, &challenge.id, max, now)?;
        let error = if attempts >= max {
            ServiceError::ChallengeLocked
        } else {
            ServiceError::WrongCode {
                attempts_left: Some(max - attempts),
            }
        };
        Some((VerificationFailure::WrongCode, error))
    } else {
        None
    };
    if let Some((kind, error)) = failure {
        // Every attempt is recorded, also at a locked challenge; the rate limit per reference
        // bounds how fast that can grow.
        record_failure(s, &request, method, kind, now);
        return Err(error);
    }
    if !store::use_challenge(&mut conn, &challenge.id, now)? {
        return Err(ServiceError::WrongCode {
            attempts_left: None,
        });
    }
    prove_and_open(s, request, method, now)
}

/// A magic link: verifies once, like the code it was sent with.
pub fn verify_magic_link(
    s: &Services,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Session, ServiceError> {
    let claims: MagicClaims = s
        .tokens()
        .verify_claims(token, MAGIC_AUDIENCE)
        .map_err(|_| ServiceError::BadLink)?;
    let mut conn = s.db().conn()?;
    let challenge = store::find_challenge(&mut conn, &claims.sub)?.ok_or(ServiceError::BadLink)?;
    let request = request_store::find_by_id(&mut conn, &challenge.request_id)?;
    // Only the newest challenge's link counts, and only once.
    let newest =
        store::latest_challenge(&mut conn, &request.id)?.is_some_and(|c| c.id == challenge.id);
    if !newest
        || from_db_time(challenge.expires_at) <= now
        || !store::use_challenge(&mut conn, &challenge.id, now)?
    {
        record_failure(
            s,
            &request,
            VerificationMethod::MagicLink,
            VerificationFailure::LinkUsed,
            now,
        );
        return Err(ServiceError::BadLink);
    }
    prove_and_open(s, request, VerificationMethod::MagicLink, now)
}

fn record_failure(
    s: &Services,
    request: &StoredRequest,
    method: VerificationMethod,
    failure: VerificationFailure,
    now: DateTime<Utc>,
) {
    if request.state.status == Status::AwaitingVerification {
        let cmd = Command::VerificationFailed { method, failure };
        if let Err(e) = requests::act(s, &request.id, &Actor::System, &cmd, None, now) {
            tracing::warn!(reference = %request.reference, error = %e, "could not record a failed verification");
        }
    }
    tracing::info!(reference = %request.reference, method = %method, failure = %failure, "verification failed");
}

/// A request that arrived with a valid platform token: the platform account is the proof.
pub fn prove_platform(
    s: &Services,
    request: StoredRequest,
    now: DateTime<Utc>,
) -> Result<Session, ServiceError> {
    prove_and_open(s, request, VerificationMethod::PlatformToken, now)
}

/// Records the proof (verifying the request if it was waiting) and opens a session.
fn prove_and_open(
    s: &Services,
    request: StoredRequest,
    method: VerificationMethod,
    now: DateTime<Utc>,
) -> Result<Session, ServiceError> {
    let request = if request.state.status == Status::AwaitingVerification {
        requests::act(
            s,
            &request.id,
            &Actor::System,
            &Command::Verify {
                method,
                evidence: None,
            },
            None,
            now,
        )?
    } else {
        request
    };
    open_session(s, request, method, now)
}

pub fn open_session(
    s: &Services,
    request: StoredRequest,
    method: VerificationMethod,
    now: DateTime<Utc>,
) -> Result<Session, ServiceError> {
    let id = uuid::Uuid::new_v4().to_string();
    let expires_at = now + Duration::minutes(s.verification().session_minutes);
    let row = SubjectSession {
        id: id.clone(),
        request_id: request.id.clone(),
        method: method.as_str().into(),
        created_at: to_db_time(now),
        expires_at: to_db_time(expires_at),
        revoked_at: None,
    };
    store::insert_session(&mut *s.db().conn()?, &row)?;
    let claims = SessionClaims {
        sub: request.id.clone(),
        sid: id,
        iss: ISSUER.into(),
        aud: SESSION_AUDIENCE.into(),
        iat: now.timestamp(),
        exp: expires_at.timestamp(),
    };
    let token = s
        .tokens()
        .sign(&claims)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(Session {
        token,
        expires_at,
        request,
    })
}

/// The request a session token opens, if it is the one named by `reference` and the session
/// is live. Every failure is the same `Unauthenticated`.
pub fn session_request(
    s: &Services,
    token: &str,
    reference: &Reference,
    now: DateTime<Utc>,
) -> Result<StoredRequest, ServiceError> {
    let claims: SessionClaims = s
        .tokens()
        .verify_claims(token, SESSION_AUDIENCE)
        .map_err(|_| ServiceError::Unauthenticated)?;
    let mut conn = s.db().conn()?;
    let session =
        store::live_session(&mut conn, &claims.sid, now)?.ok_or(ServiceError::Unauthenticated)?;
    let request = request_store::find_by_id(&mut conn, &session.request_id)
        .map_err(|_| ServiceError::Unauthenticated)?;
    if session.request_id != claims.sub || &request.reference != reference {
        return Err(ServiceError::Unauthenticated);
    }
    Ok(request)
}

/// Ends a session (sign out). Unknown or invalid tokens are ignored.
pub fn close_session(s: &Services, token: &str, now: DateTime<Utc>) -> Result<(), ServiceError> {
    if let Ok(claims) = s
        .tokens()
        .verify_claims::<SessionClaims>(token, SESSION_AUDIENCE)
    {
        store::revoke_session(&mut *s.db().conn()?, &claims.sid, now)?;
    }
    Ok(())
}

/// Checks a token the platform signed for a signed-in user; returns the platform user id.
pub struct PlatformVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Debug, Deserialize)]
struct PlatformClaims {
    sub: String,
}

impl PlatformVerifier {
    pub fn from_config(cfg: &PlatformAuth) -> Result<PlatformVerifier, String> {
        let (algorithm, key) = match cfg.algorithm.as_str() {
            "HS256" => {
                let secret = cfg.secret.as_ref().ok_or("platform HS256 needs `secret`")?;
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.expose().as_bytes())
                        .map_err(|e| e.to_string())?,
                )
            }
            "RS256" | "ES256" => {
                let path = cfg
                    .public_key_file
                    .as_ref()
                    .ok_or("platform RS256/ES256 needs `public_key_file`")?;
                let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                if cfg.algorithm == "RS256" {
                    (
                        Algorithm::RS256,
                        DecodingKey::from_rsa_pem(&pem).map_err(|e| e.to_string())?,
                    )
                } else {
                    (
                        Algorithm::ES256,
                        DecodingKey::from_ec_pem(&pem).map_err(|e| e.to_string())?,
                    )
                }
            }
            other => {
                return Err(format!(
                    "platform algorithm must be HS256, RS256 or ES256, not {other}"
                ))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[cfg.issuer.as_str()]);
        validation.set_audience(&[cfg.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(PlatformVerifier { key, validation })
    }

    pub fn user_id(&self, token: &str) -> Result<String, ServiceError> {
        let data = decode::<PlatformClaims>(token, &self.key, &self.validation)
            .map_err(|_| ServiceError::BadPlatformToken)?;
        let sub = data.claims.sub.trim().to_owned();
        if sub.is_empty() || sub.len() > 200 {
            return Err(ServiceError::BadPlatformToken);
        }
        Ok(sub)
    }
}
