//! Use cases: each loads what it needs, asks the workflow core, and stores the outcome. Blocking
//! (diesel): the web layer calls these through `web::block`, the CLI directly.

pub mod requests;
pub mod staff;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

use crate::auth::TokenKeys;
use crate::clock::CalendarSet;
use crate::domain::{Context, Policy, TransitionError};
use crate::storage::{Database, StoreError};

/// What every use case needs: cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    policy: Policy,
    calendars: CalendarSet,
    tokens: TokenKeys,
}

impl Services {
    pub fn new(
        db: Database,
        policy: Policy,
        calendars: CalendarSet,
        tokens: TokenKeys,
    ) -> Services {
        Services {
            inner: Arc::new(Inner {
                db,
                policy,
                calendars,
                tokens,
            }),
        }
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    pub fn calendars(&self) -> &CalendarSet {
        &self.inner.calendars
    }

    pub fn tokens(&self) -> &TokenKeys {
        &self.inner.tokens
    }

    pub fn context(&self, now: DateTime<Utc>) -> Context<'_> {
        Context {
            now,
            policy: &self.inner.policy,
            calendars: &self.inner.calendars,
        }
    }
}

/// The current instant at the precision both databases keep (microseconds), so that what is
/// stored reads back equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The caller acted on an older version of the request than the stored one.
    #[error("the request changed since you loaded it (now version {current})")]
    Stale { current: i64 },
    #[error("the request is being changed by someone else; try again")]
    Busy,
    #[error("no active staff member can take this assignment")]
    UnknownAssignee,
    #[error("the receipt time lies in the future")]
    ReceivedInFuture,
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("the password must be at least {0} characters")]
    WeakPassword(usize),
    #[error("a staff member with this email exists already")]
    DuplicateStaff,
    #[error("authentication required")]
    Unauthenticated,
    #[error("the subject token does not match this request")]
    WrongSubjectToken,
    #[error(transparent)]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::Conflict => ServiceError::Busy,
            other => ServiceError::Store(other),
        }
    }
}
