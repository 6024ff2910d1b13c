//! Use cases: each loads what it needs, asks the workflow core, and stores the outcome. Blocking
//! (diesel): the web layer calls these through `web::block`, the CLI directly.

pub mod audit_log;
pub mod evidence;
pub mod requests;
pub mod results;
pub mod retention;
pub mod second_factor;
pub mod staff;
pub mod verification;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

use crate::auth::TokenKeys;
use crate::clock::CalendarSet;
use crate::config::VerificationConfig;
use crate::domain::{Context, Policy, TransitionError};
use crate::storage::{Database, StoreError};

/// What every use case needs: cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// A read replica for the console's reports, when configured.
    replica: Option<Database>,
    /// The dashboard's sums of final days already read (facts that never change).
    answered_cache: crate::storage::report_days::AnsweredCache,
    policy: Policy,
    calendars: CalendarSet,
    tokens: TokenKeys,
    verification: VerificationConfig,
    platform: Option<verification::PlatformVerifier>,
    public_url: String,
    systems: crate::fulfilment::registry::Registry,
    consents: crate::config::ConsentConfig,
    restriction_notice_days: u32,
    drp: Option<crate::interop::drp::DrpSettings>,
    opendsr: Option<crate::interop::opendsr::OpendsrSettings>,
}

/// What fulfilment needs: the data systems and the consent ledger's settings.
pub struct FulfilmentSettings {
    pub systems: crate::fulfilment::registry::Registry,
    pub consents: crate::config::ConsentConfig,
    /// Days between telling the subject and lifting a restriction.
    pub restriction_notice_days: u32,
    /// The Data Rights Protocol's business id and signing key (status callbacks tell agents how
    /// their requests end); None: DRP is off.
    pub drp: Option<crate::interop::drp::DrpSettings>,
    /// OpenDSR's signing key and domain (status callbacks are signed); None: OpenDSR is off.
    pub opendsr: Option<crate::interop::opendsr::OpendsrSettings>,
}

/// What the identity checks need besides the database: limits, the platform's key, and the
/// address links in messages point at.
pub struct IdentitySettings {
    pub verification: VerificationConfig,
    pub platform: Option<verification::PlatformVerifier>,
    pub public_url: String,
}

impl Services {
    pub fn new(
        db: Database,
        replica: Option<Database>,
        policy: Policy,
        calendars: CalendarSet,
        tokens: TokenKeys,
        identity: IdentitySettings,
        fulfilment: FulfilmentSettings,
    ) -> Services {
        let IdentitySettings {
            verification,
            platform,
            public_url,
        } = identity;
        let FulfilmentSettings {
            systems,
            consents,
            restriction_notice_days,
            drp,
            opendsr,
        } = fulfilment;
        Services {
            inner: Arc::new(Inner {
                db,
                replica,
                answered_cache: Default::default(),
                policy,
                calendars,
                tokens,
                verification,
                platform,
                public_url,
                systems,
                consents,
                restriction_notice_days,
                drp,
                opendsr,
            }),
        }
    }

    /// The consent ledger's settings.
    pub fn consents(&self) -> &crate::config::ConsentConfig {
        &self.inner.consents
    }

    /// The Data Rights Protocol's settings, when it is configured.
    pub fn drp(&self) -> Option<&crate::interop::drp::DrpSettings> {
        self.inner.drp.as_ref()
    }

    /// OpenDSR's settings, when it is configured.
    pub fn opendsr(&self) -> Option<&crate::interop::opendsr::OpendsrSettings> {
        self.inner.opendsr.as_ref()
    }

    /// Days between telling the subject a restriction will be lifted and lifting it.
    pub fn restriction_notice_days(&self) -> u32 {
        self.inner.restriction_notice_days
    }

    /// The key new results are sealed under at rest (the database's current data key).
    pub fn data_key(&self) -> &crate::auth::sealing::DataKey {
        self.inner.db.vault().current()
    }

    /// The data systems approved requests are fulfilled in.
    pub fn systems(&self) -> &crate::fulfilment::registry::Registry {
        &self.inner.systems
    }

    pub fn verification(&self) -> &VerificationConfig {
        &self.inner.verification
    }

    pub fn platform(&self) -> Option<&verification::PlatformVerifier> {
        self.inner.platform.as_ref()
    }

    pub fn public_url(&self) -> &str {
        self.inner.public_url.trim_end_matches('/')
    }

    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// The dashboard's sums of final days, kept in memory (storage::report_days).
    pub fn answered_cache(&self) -> &crate::storage::report_days::AnsweredCache {
        &self.inner.answered_cache
    }

    /// Where the console's reports read: the replica when one is configured, else the
    /// primary; with it, the primary for what a report keeps (`None` when both are one).
    pub fn reports_db(&self) -> (&Database, Option<&Database>) {
        match &self.inner.replica {
            Some(replica) => (replica, Some(&self.inner.db)),
            None => (&self.inner.db, None),
        }
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
    #[error("the code is wrong")]
    WrongCode { attempts_left: Option<i32> },
    #[error("the code has expired")]
    CodeExpired,
    #[error("too many wrong codes; ask for a new one")]
    ChallengeLocked,
    #[error("the link is invalid, expired or used")]
    BadLink,
    #[error("the platform token is invalid")]
    BadPlatformToken,
    #[error("a new code can be sent in {retry_after} s")]
    TooSoon { retry_after: i64 },
    /// The account has a second factor and no code was given.
    #[error("a two-step verification code is required")]
    TotpRequired,
    /// The code is wrong, out of time, or was used already.
    #[error("the two-step verification code is wrong")]
    TotpInvalid,
    /// An admin requires a second factor this account has not set up yet.
    #[error("two-step verification must be set up first")]
    TotpEnrolmentRequired,
    /// The actor's role does not allow this (outside the core's command rules).
    #[error("not permitted")]
    NotPermitted,
    /// A waived task needs its reason.
    #[error("say why the task cannot be done")]
    WaiveReasonMissing,
    /// A list filter that does not parse (its name).
    #[error("{0}: not a valid filter")]
    InvalidFilter(&'static str),
    /// A portability request named a destination that is not configured.
    #[error("no such destination")]
    UnknownDestination,
    /// Only a completed restriction request with a restriction in force can be lifted.
    #[error("there is no restriction in force to lift")]
    NotRestricted,
    /// The restriction is being lifted (or was) already.
    #[error("the restriction is being lifted already")]
    AlreadyLifting,
    /// A task marked done by hand needs what was done.
    #[error("say what was done")]
    DoneNoteMissing,
    /// Only manual tasks are marked done by staff; the others end by their connector.
    #[error("only a manual task is marked done by hand")]
    NotManual,
    /// The task has ended already (done, cancelled or waived).
    #[error("the task has ended already")]
    TaskEnded,
    /// Results belong to access and portability requests, once approved.
    #[error("a result can only be attached to an access or portability request in progress")]
    ResultNotAllowed,
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
