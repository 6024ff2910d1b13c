//! Email through lettre. Three transports: `smtp` (pooled; TLS or STARTTLS as the URL says),
//! `file` (each message as `<id>.eml` plus `<id>.json` in a folder, for trying the product
//! without a mail server) and `log` (a log line, no content). Every message is multipart
//! (plain text and HTML) and carries the outbox row's id as its `Message-ID`, so a retry sends
//! the same message again rather than a different one.

use std::path::{Path, PathBuf};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde::{Deserialize, Serialize};

use super::smtp::{Server, SmtpClient};
use super::templates::RenderedEmail;

/// What an `email` outbox row carries: the rendered message, fixed when it was queued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailPayload {
    pub to: String,
    pub locale: String,
    pub message: String,
    #[serde(flatten)]
    pub content: RenderedEmail,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("building the message: {0}")]
    Build(String),
    /// The server or the folder did not take the message; worth retrying.
    #[error("sending failed: {0}")]
    Send(String),
}

pub enum MailTransport {
    Smtp(Box<SmtpClient>),
    File(PathBuf),
    Log,
}

/// Per SMTP command; the default lease (60 s) leaves room for a whole exchange.
pub const SMTP_TIMEOUT_SECONDS: u64 = 20;

pub struct Mailer {
    transport: MailTransport,
    from: Mailbox,
    /// The right-hand side of Message-IDs: the sender's domain.
    domain: String,
}

impl Mailer {
    /// `connections`: how many SMTP connections are kept open for reuse (one per lane of the
    /// outbox worker, so no lane reconnects for each message).
    pub fn smtp(url: &str, from: &str, connections: u32) -> Result<Mailer, MailError> {
        let client = SmtpClient::new(
            Server::from_url(url)?,
            connections as usize,
            std::time::Duration::from_secs(SMTP_TIMEOUT_SECONDS),
        );
        Mailer::new(MailTransport::Smtp(Box::new(client)), from)
    }

    pub fn file(dir: &Path, from: &str) -> Result<Mailer, MailError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MailError::Config(format!("{}: {e}", dir.display())))?;
        Mailer::new(MailTransport::File(dir.to_path_buf()), from)
    }

    pub fn log(from: &str) -> Result<Mailer, MailError> {
        Mailer::new(MailTransport::Log, from)
    }

    fn new(transport: MailTransport, from: &str) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Config(format!("RIGHTSFLOW_MAIL_FROM {from:?}: {e}")))?;
        let domain = from.email.domain().to_owned();
        Ok(Mailer {
            transport,
            from,
            domain,
        })
    }

    /// The folder the file transport writes to, when it is the one in use (for `/dev/mail`).
    pub fn dev_mailbox(&self) -> Option<&Path> {
        match &self.transport {
            MailTransport::File(dir) => Some(dir),
            _ => None,
        }
    }

    pub fn message_id(&self, id: &str) -> String {
        format!("<{id}@{}>", self.domain)
    }

    fn build(&self, id: &str, email: &EmailPayload) -> Result<Message, MailError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| MailError::Build(format!("recipient: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.content.subject.clone())
            .message_id(Some(self.message_id(id)))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.content.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.content.html.clone()),
                    ),
            )
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// Sends one message. Errors are worth retrying unless they are `Build` errors.
    pub fn send(&self, id: &str, email: &EmailPayload) -> Result<(), MailError> {
        let message = self.build(id, email)?;
        match &self.transport {
            MailTransport::Smtp(smtp) => smtp.send(message.envelope(), &message.formatted()),
            MailTransport::File(dir) => {
                let write = |name: String, bytes: &[u8]| {
                    std::fs::write(dir.join(name), bytes)
                        .map_err(|e| MailError::Send(e.to_string()))
                };
                let sidecar = serde_json::to_vec(&DevMail::new(id, email))
                    .map_err(|e| MailError::Send(e.to_string()))?;
                write(format!("{id}.eml"), &message.formatted())?;
                write(format!("{id}.json"), &sidecar)
            }
            MailTransport::Log => {
                tracing::info!(message_id = %id, message = %email.message, "email (log transport; content not logged)");
                Ok(())
            }
        }
    }
}

/// What the file transport keeps beside each `.eml`, for the development mailbox page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevMail {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub written_at: String,
}

impl DevMail {
    fn new(id: &str, email: &EmailPayload) -> DevMail {
        DevMail {
            id: id.to_owned(),
            to: email.to.clone(),
            subject: email.content.subject.clone(),
            text: email.content.text.clone(),
            html: email.content.html.clone(),
            written_at: chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S%.3f UTC")
                .to_string(),
        }
    }

    /// The messages in a file-transport folder, newest first.
    pub fn read_all(dir: &Path) -> Vec<DevMail> {
        let mut mails: Vec<DevMail> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
                    .collect()
            })
            .unwrap_or_default();
        mails.sort_by(|a: &DevMail, b: &DevMail| b.written_at.cmp(&a.written_at));
        mails
    }
}
