//! Notifications: the outbox worker that turns the core's `Notify` effects into email, SMS and
//! in-site messages, and the deadline reminders for staff. Delivery is at least once: a message
//! whose sending succeeded but whose row was not yet marked done (a crash in between) is sent
//! again when its lease runs out, with the same Message-ID, so mail systems and people can tell
//! it is the same message. See docs/NOTIFICATIONS.md.

pub mod context;
pub mod expand;
pub mod mail;
pub mod reminders;
pub mod sms;
pub mod smtp;
pub mod templates;
pub mod worker;

use std::sync::Arc;

use crate::config::{Config, MailTransportKind, SmsGatewayKind, WorkerConfig};
use crate::storage::StoreError;

pub use context::Site;
pub use mail::{MailError, Mailer};
pub use sms::{SmsError, SmsGateway};
pub use templates::{Audience, TemplateError, Templates};
pub use worker::{Shutdown, Worker};

/// Everything needed to render and deliver messages; shared by workers and the web layer.
pub struct Notifier {
    pub templates: Templates,
    pub mailer: Mailer,
    pub sms: SmsGateway,
    pub site: Site,
    pub worker: WorkerConfig,
    pub reminder_working_days: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Sms(#[from] SmsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bad outbox payload: {0}")]
    Payload(String),
    #[error("claimed more often than the attempt limit without an outcome (a worker kept stopping on it)")]
    Abandoned,
    #[error("fulfilment: {0}")]
    Fulfilment(String),
    #[error("fulfilment: {0}")]
    FulfilmentPermanent(String),
}

impl From<crate::fulfilment::run::FulfilError> for NotifyError {
    fn from(e: crate::fulfilment::run::FulfilError) -> Self {
        match e {
            crate::fulfilment::run::FulfilError::Transient(m) => NotifyError::Fulfilment(m),
            crate::fulfilment::run::FulfilError::Permanent(m) => {
                NotifyError::FulfilmentPermanent(m)
            }
        }
    }
}

impl NotifyError {
    /// Errors a retry cannot fix: a template that does not render, a payload that does not
    /// parse, a message that cannot be built. They are parked at once for an admin.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            NotifyError::Template(_)
                | NotifyError::Payload(_)
                | NotifyError::Mail(MailError::Build(_))
                | NotifyError::FulfilmentPermanent(_)
        )
    }
}

impl Notifier {
    pub fn from_config(config: &Config) -> Result<Arc<Notifier>, NotifyError> {
        let templates = Templates::load(config.templates_dir.as_deref())?;
        let mailer = match config.mail_transport() {
            MailTransportKind::Smtp => {
                let url = config.smtp_url.as_ref().ok_or_else(|| {
                    MailError::Config(
                        "RIGHTSFLOW_MAIL_TRANSPORT=smtp needs RIGHTSFLOW_SMTP_URL".into(),
                    )
                })?;
                Mailer::smtp(
                    url.expose(),
                    &config.mail_from,
                    config.worker.concurrency.clamp(1, 32) as u32,
                )?
            }
            MailTransportKind::File => {
                Mailer::file(&config.data_dir.join("mail"), &config.mail_from)?
            }
            MailTransportKind::Log => Mailer::log(&config.mail_from)?,
        };
        let sms = match config.sms_gateway {
            SmsGatewayKind::Log => SmsGateway::Log,
            SmsGatewayKind::Http => {
                let url = config.sms_url.as_deref().ok_or_else(|| {
                    SmsError::Config("RIGHTSFLOW_SMS_GATEWAY=http needs RIGHTSFLOW_SMS_URL".into())
                })?;
                let secret = config.sms_secret.as_ref().ok_or_else(|| {
                    SmsError::Config(
                        "RIGHTSFLOW_SMS_GATEWAY=http needs RIGHTSFLOW_SMS_SECRET".into(),
                    )
                })?;
                SmsGateway::http(url, secret.expose())?
            }
        };
        Ok(Arc::new(Notifier {
            templates,
            mailer,
            sms,
            site: Site {
                app_name: "WEIMACMS".into(),
                base_url: config.public_url(),
            },
            worker: config.worker.clone(),
            reminder_working_days: config.reminder_working_days,
        }))
    }
}
