//! Configuration: defaults that work out of the box, then a TOML file (`--config` or
//! `RIGHTSFLOW_CONFIG`), then `RIGHTSFLOW_*` environment variables, each overriding the last.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Policy;

/// A secret from config: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    Smtp,
    File,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmsGatewayKind {
    Http,
    #[default]
    Log,
}

/// The outbox worker: how it claims, how long a claim lasts, how it retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Run the worker inside `rightsflow serve` (turn off when separate `rightsflow worker`
    /// processes do the work).
    pub in_serve: bool,
    /// Rows claimed at a time.
    pub batch: i64,
    /// Deliveries in flight at once per worker.
    pub concurrency: usize,
    /// How long to wait when the queue is empty.
    pub poll_millis: u64,
    /// How long a claim lasts; after it another worker may take the row (the claimant died).
    pub lease_seconds: i64,
    /// Attempts before a row is parked as failed.
    pub max_attempts: i32,
    pub retry_base_seconds: i64,
    pub retry_max_seconds: i64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            in_serve: true,
            // Sixteen lanes: an exchange with a real relay is mostly waiting for its replies
            // (docs/NOTIFICATIONS.md, "Concurrency lanes"); a pass should keep every lane busy.
            batch: 100,
            concurrency: 16,
            poll_millis: 500,
            lease_seconds: 60,
            max_attempts: 8,
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
        }
    }
}

/// How subjects prove who they are, and how long what they get lasts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationConfig {
    /// How long a one-time code (and the magic link sent with it) is valid.
    pub code_minutes: i64,
    /// Wrong codes before a challenge locks.
    pub max_attempts: i32,
    /// The least time between two codes for one request.
    pub resend_seconds: i64,
    /// How long a subject session lasts.
    pub session_minutes: i64,
    /// Tokens the platform signs for users already signed in to it.
    pub platform: Option<PlatformAuth>,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        VerificationConfig {
            code_minutes: 15,
            max_attempts: 5,
            resend_seconds: 60,
            session_minutes: 30,
            platform: None,
        }
    }
}

/// The platform's sign-in tokens: HS256 with a shared secret, or RS256/ES256 with the
/// platform's public key (PEM). Issuer, audience and expiry are always checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformAuth {
    /// `HS256`, `RS256` or `ES256`.
    pub algorithm: String,
    pub secret: Option<Secret>,
    /// A PEM file with the platform's public key.
    pub public_key_file: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where generated secrets, the default SQLite file and extra calendars live.
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL; anything else is a SQLite file. Default:
    /// `<data_dir>/rightsflow.db`.
    pub database_url: Option<String>,
    pub database_pool_size: u32,
    /// PostgreSQL: a statement running longer than this is cancelled (0: no limit), in
    /// `serve` and `worker`; maintenance commands (migrate, audit, keys, bench) run without
    /// one. SQLite has no statement timeout.
    pub database_statement_timeout_seconds: u64,
    /// SQLite: past this many MiB, the write-ahead log is started again from its beginning,
    /// while every writer of the process waits 10–30 ms (docs/OPERATIONS.md). Four times this,
    /// grown while a long read held the log, and the file is emptied too.
    pub sqlite_wal_limit_mb: std::num::NonZeroU64,
    /// PostgreSQL: a read replica (hot standby) for the console's reports (the dashboard and
    /// the queue's CSV export). Unset: they read the primary.
    pub database_replica_url: Option<String>,
    pub listen: String,
    /// HS256 key for staff tokens; generated and kept in the data folder when unset.
    pub jwt_secret: Option<Secret>,
    /// AES-256 key (64 hex digits) sealing results at rest; generated and kept in the data
    /// folder when unset.
    pub data_key: Option<Secret>,
    /// Keys `data_key` replaced: older values still open with them until `rightsflow keys
    /// rotate` has sealed everything under the current key.
    pub previous_data_keys: Vec<Secret>,
    /// Key of the blind indexes (exact lookups by email or phone); at least 32 characters;
    /// generated and kept in the data folder when unset. Never changes once data is written.
    pub index_key: Option<Secret>,
    /// Production mode: secrets are never generated; a missing one stops start-up.
    pub production: bool,
    pub staff_token_minutes: i64,
    pub log_format: LogFormat,
    pub admin_email: String,
    pub admin_password: Option<Secret>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Extra holiday calendars (`*.toml`), on top of the built-in ones. Default:
    /// `<data_dir>/calendars`.
    pub calendar_dir: Option<PathBuf>,
    /// How often the expiry job looks for requests never verified in time (0: never).
    pub expiry_sweep_seconds: u64,
    /// Days after a request ends that its evidence is kept before the expiry job anonymises it
    /// (default three years).
    pub retention_days: u32,
    pub policy: Policy,
    /// `smtp`, `file` or `log`. Unset: `smtp` when `smtp_url` is set, else `file`.
    pub mail_transport: Option<MailTransportKind>,
    /// e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@host` (TLS), `smtp://host?tls=required`.
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    /// How messages name the service (`{{app_name}}` in templates).
    pub app_name: String,
    /// The address people reach this service at, for links in messages. Default:
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Templates that override the built-in ones (same relative paths).
    pub templates_dir: Option<PathBuf>,
    pub sms_gateway: SmsGatewayKind,
    pub sms_url: Option<String>,
    pub sms_secret: Option<Secret>,
    pub worker: WorkerConfig,
    pub verification: VerificationConfig,
    pub rate_limits: crate::web::limits::RateLimitConfig,
    /// Staff are reminded when a request is due within this many working days.
    pub reminder_working_days: u32,
    /// How often the reminder job runs (0: never).
    pub reminder_sweep_seconds: u64,
    /// The data systems that approved requests are fulfilled in (docs/FULFILMENT.md).
    pub fulfilment: FulfilmentConfig,
    /// The consent ledger: its purposes, the platform's key for its API, the webhook.
    pub consents: ConsentConfig,
    /// The Data Rights Protocol 1.0 (docs/INTEROP.md): off until both are set.
    pub drp: DrpConfig,
    /// OpenDSR 2.0 (docs/INTEROP.md): off until its signing key is set.
    pub opendsr: OpendsrConfig,
}

/// Who we are to OpenDSR controllers: the key our responses and callbacks are signed with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpendsrConfig {
    /// A P-256 private key, PKCS#8 PEM or base64 of its DER (`rightsflow opendsr keygen`
    /// makes one); from the environment (`RIGHTSFLOW_OPENDSR_SIGNING_KEY`) or a config file
    /// outside the repository, never committed.
    pub signing_key: Option<Secret>,
    /// The domain our signatures are issued for (`X-OpenDSR-Processor-Domain`); the host of
    /// `public_url` when absent.
    pub processor_domain: Option<String>,
    /// The PEM certificate of the signing key, issued by a trusted authority to the processor
    /// domain (§4.1), published through discovery.
    pub certificate_file: Option<PathBuf>,
}

impl OpendsrConfig {
    /// The settings the service runs with: None while OpenDSR is not configured; an error for
    /// a bad configuration.
    pub fn settings(
        &self,
        public_url: &str,
    ) -> Result<Option<crate::interop::opendsr::OpendsrSettings>, String> {
        let Some(key) = &self.signing_key else {
            if self.processor_domain.is_some() || self.certificate_file.is_some() {
                return Err("opendsr: signing_key is not set".into());
            }
            return Ok(None);
        };
        let domain = match &self.processor_domain {
            Some(d) => d.clone(),
            None => url::Url::parse(public_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .ok_or("opendsr: processor_domain is not set and public_url has no host")?,
        };
        let certificate = match &self.certificate_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("opendsr.certificate_file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        crate::interop::opendsr::OpendsrSettings::new(key.expose(), &domain, certificate).map(Some)
    }
}

/// Who we are in a Data Rights Protocol network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrpConfig {
    /// Our `business-id` in the network's directory.
    pub business_id: Option<String>,
    /// Base64 of the 32-byte Ed25519 seed our status callbacks are signed with
    /// (`rightsflow drp keygen` makes one); from the environment (`RIGHTSFLOW_DRP_SIGNING_KEY`)
    /// or a config file outside the repository, never committed.
    pub signing_key: Option<Secret>,
}

impl DrpConfig {
    /// The settings the service runs with: None while DRP is not configured; an error for a
    /// half or bad configuration.
    pub fn settings(&self) -> Result<Option<crate::interop::drp::DrpSettings>, String> {
        match (&self.business_id, &self.signing_key) {
            (None, None) => Ok(None),
            (Some(id), Some(key)) => {
                crate::interop::drp::DrpSettings::from_config(id, key.expose()).map(Some)
            }
            _ => Err("drp: business_id and signing_key must be set together".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsentConfig {
    /// The purposes consent is asked for (the policy's four by default). A consent withdrawal
    /// request names some of the built-in ones; the platform may record any listed here.
    pub purposes: Vec<String>,
    /// The platform's bearer key for `/api/v1/subjects/{platform_user_id}/consents`; unset:
    /// that API answers 404.
    pub api_key: Option<Secret>,
    /// Where each change Rightsflow records is POSTed (signed like the SMS gateway's calls).
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<Secret>,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        ConsentConfig {
            purposes: crate::domain::details::Consent::ALL
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            api_key: None,
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FulfilmentConfig {
    /// Wire the demo platform (a SQLite file `demo-platform.db` in the data folder, created on
    /// first start) as a data system, so a new install shows real access reports and
    /// deletions. Turn it off in production.
    pub demo_platform: bool,
    pub systems: Vec<SystemConfig>,
    /// Third parties the platform shares personal data with (policy section 五): told of
    /// corrections, deletions and restrictions (GDPR Art. 19), listed to the subject.
    pub recipients: Vec<SystemConfig>,
    /// How many days before a restriction is lifted the subject is told (GDPR Art. 18(3)).
    pub restriction_notice_days: u32,
    /// Other processors a subject may have their portability package sent to (GDPR Art.
    /// 20(2), PIPL Art. 45): `connector = "http"` with an https url and secrets.
    pub destinations: Vec<SystemConfig>,
}

impl Default for FulfilmentConfig {
    fn default() -> Self {
        FulfilmentConfig {
            demo_platform: true,
            systems: vec![],
            recipients: vec![],
            restriction_notice_days: 7,
            destinations: vec![],
        }
    }
}

/// How Rightsflow reaches a data system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// Its own database, described by a dataset description.
    #[default]
    Sql,
    /// A signed JSON call to its endpoint; it answers at once or later through a callback.
    Http,
    /// A checklist item staff do by hand and mark done.
    Manual,
}

/// One data system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// A short name (`crm`, `orders`): in task lists, notes, reports and package file names.
    pub name: String,
    /// What staff and subjects read (`会员中心 / Member centre`). Default: the name.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub connector: ConnectorKind,
    /// sql: `postgres://…` or a SQLite file; http: the endpoint tasks are POSTed to. May hold
    /// a password: never logged.
    #[serde(default)]
    pub url: Option<Secret>,
    /// sql: the dataset description (TOML).
    #[serde(default)]
    pub dataset: Option<PathBuf>,
    /// http: the shared HMAC secrets; the first signs, any of them is accepted (rotation: add
    /// the new one first, remove the old one once the system has switched).
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// http and manual: the categories of personal data the system holds.
    #[serde(default)]
    pub categories: Vec<crate::domain::details::DataCategory>,
    /// manual: what staff are to do (shown on the task).
    #[serde(default)]
    pub instructions: Option<String>,
    /// recipients: what the third party receives the data for, as the subject reads it.
    #[serde(default)]
    pub purpose: Option<String>,
    /// http and manual: the consent purposes it keeps; a withdrawal of any is passed on.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// http: the identity keys it understands (`platform_user_id`, `email`, `phone`); only
    /// those are sent. Default: all three.
    #[serde(default)]
    pub keys: Vec<crate::fulfilment::dataset::IdentityKey>,
    /// How long one attempt may take (an HTTP call; a SQL statement on PostgreSQL).
    #[serde(default = "default_task_timeout")]
    pub timeout_seconds: u64,
}

fn default_task_timeout() -> u64 {
    30
}

impl SystemConfig {
    /// A system reached by the SQL connector.
    pub fn sql(name: &str, url: &str, dataset: PathBuf) -> SystemConfig {
        SystemConfig {
            name: name.into(),
            label: None,
            connector: ConnectorKind::Sql,
            url: Some(Secret::new(url)),
            dataset: Some(dataset),
            secrets: vec![],
            categories: vec![],
            instructions: None,
            purpose: None,
            purposes: vec![],
            keys: vec![],
            timeout_seconds: default_task_timeout(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_pool_size: 8,
            database_statement_timeout_seconds: 30,
            sqlite_wal_limit_mb: crate::storage::db::WAL_LIMIT_MB,
            database_replica_url: None,
            listen: "127.0.0.1:8080".into(),
            jwt_secret: None,
            data_key: None,
            previous_data_keys: Vec::new(),
            index_key: None,
            production: false,
            staff_token_minutes: 60,
            log_format: LogFormat::Pretty,
            admin_email: "admin@localhost".into(),
            admin_password: None,
            body_limit: 64 * 1024,
            calendar_dir: None,
            expiry_sweep_seconds: 300,
            retention_days: 3 * 365,
            policy: Policy::default(),
            mail_transport: None,
            smtp_url: None,
            mail_from: "WEIMACMS <privacy@localhost>".into(),
            app_name: "WEIMACMS".into(),
            public_url: None,
            templates_dir: None,
            sms_gateway: SmsGatewayKind::Log,
            sms_url: None,
            sms_secret: None,
            worker: WorkerConfig::default(),
            verification: VerificationConfig::default(),
            rate_limits: crate::web::limits::RateLimitConfig::default(),
            reminder_working_days: 3,
            reminder_sweep_seconds: 300,
            fulfilment: FulfilmentConfig::default(),
            consents: ConsentConfig::default(),
            drp: DrpConfig::default(),
            opendsr: OpendsrConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name} is invalid: {message}")]
    Env { name: &'static str, message: String },
}

impl Config {
    /// Loads the file (if any) and applies the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with(file, |name| std::env::var(name).ok())
    }

    /// As `load`, with the environment given as a function (so tests need not touch the
    /// process environment).
    pub fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let from_env = env("RIGHTSFLOW_CONFIG").map(PathBuf::from);
        let mut config = match file.map(Path::to_path_buf).or(from_env) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path,
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        if let Some(v) = get("RIGHTSFLOW_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("RIGHTSFLOW_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("RIGHTSFLOW_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("RIGHTSFLOW_JWT_SECRET") {
            self.jwt_secret = Some(Secret(v));
        }
        if let Some(v) = get("RIGHTSFLOW_DATA_KEY") {
            self.data_key = Some(Secret(v));
        }
        if let Some(v) = get("RIGHTSFLOW_PREVIOUS_DATA_KEYS") {
            // Comma-separated, newest first.
            self.previous_data_keys = v
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(Secret::new)
                .collect();
        }
        if let Some(v) = get("RIGHTSFLOW_INDEX_KEY") {
            self.index_key = Some(Secret(v));
        }
        if let Some(v) = get("RIGHTSFLOW_PRODUCTION") {
            self.production = match v.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => {
                    return Err(env_error(
                        "RIGHTSFLOW_PRODUCTION",
                        "expected 1, true, 0 or false",
                    ))
                }
            };
        }
        if let Some(v) = get("RIGHTSFLOW_ADMIN_EMAIL") {
            self.admin_email = v;
        }
        if let Some(v) = get("RIGHTSFLOW_ADMIN_PASSWORD") {
            self.admin_password = Some(Secret(v));
        }
        if let Some(v) = get("RIGHTSFLOW_CALENDAR_DIR") {
            self.calendar_dir = Some(v.into());
        }
        if let Some(v) = get("RIGHTSFLOW_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "pretty" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                _ => {
                    return Err(env_error(
                        "RIGHTSFLOW_LOG_FORMAT",
                        "expected pretty or json",
                    ))
                }
            };
        }
        if let Some(v) = get("RIGHTSFLOW_MAIL_TRANSPORT") {
            self.mail_transport = Some(match v.as_str() {
                "smtp" => MailTransportKind::Smtp,
                "file" => MailTransportKind::File,
                "log" => MailTransportKind::Log,
                _ => {
                    return Err(env_error(
                        "RIGHTSFLOW_MAIL_TRANSPORT",
                        "expected smtp, file or log",
                    ))
                }
            });
        }
        if let Some(v) = get("RIGHTSFLOW_SMTP_URL") {
            self.smtp_url = Some(Secret(v));
        }
        if let Some(v) = get("RIGHTSFLOW_MAIL_FROM") {
            self.mail_from = v;
        }
        if let Some(v) = get("RIGHTSFLOW_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("RIGHTSFLOW_TEMPLATES_DIR") {
            self.templates_dir = Some(v.into());
        }
        if let Some(v) = get("RIGHTSFLOW_SMS_GATEWAY") {
            self.sms_gateway = match v.as_str() {
                "http" => SmsGatewayKind::Http,
                "log" => SmsGatewayKind::Log,
                _ => return Err(env_error("RIGHTSFLOW_SMS_GATEWAY", "expected http or log")),
            };
        }
        if let Some(v) = get("RIGHTSFLOW_SMS_URL") {
            self.sms_url = Some(v);
        }
        if let Some(v) = get("RIGHTSFLOW_SMS_SECRET") {
            self.sms_secret = Some(Secret(v));
        }
        if let Some(v) = get("RIGHTSFLOW_DRP_BUSINESS_ID") {
            self.drp.business_id = Some(v);
        }
        if let Some(v) = get("RIGHTSFLOW_DRP_SIGNING_KEY") {
            self.drp.signing_key = Some(Secret::new(v));
        }
        if let Some(v) = get("RIGHTSFLOW_OPENDSR_SIGNING_KEY") {
            self.opendsr.signing_key = Some(Secret::new(v));
        }
        if let Some(v) = get("RIGHTSFLOW_OPENDSR_PROCESSOR_DOMAIN") {
            self.opendsr.processor_domain = Some(v);
        }
        if let Some(v) = get("RIGHTSFLOW_OPENDSR_CERTIFICATE_FILE") {
            self.opendsr.certificate_file = Some(v.into());
        }
        if let Some(v) = get("RIGHTSFLOW_DATABASE_REPLICA_URL") {
            self.database_replica_url = Some(v);
        }
        if let Some(v) = get("RIGHTSFLOW_DATABASE_STATEMENT_TIMEOUT_SECONDS") {
            self.database_statement_timeout_seconds = v.parse().map_err(|_| {
                env_error(
                    "RIGHTSFLOW_DATABASE_STATEMENT_TIMEOUT_SECONDS",
                    "expected a whole number of seconds",
                )
            })?;
        }
        if let Some(v) = get("RIGHTSFLOW_SQLITE_WAL_LIMIT_MB") {
            self.sqlite_wal_limit_mb = v.parse().map_err(|_| {
                env_error(
                    "RIGHTSFLOW_SQLITE_WAL_LIMIT_MB",
                    "expected a whole number of MiB, at least 1",
                )
            })?;
        }
        if let Some(v) = get("RIGHTSFLOW_DATABASE_POOL_SIZE") {
            self.database_pool_size = v.parse().map_err(|_| {
                env_error("RIGHTSFLOW_DATABASE_POOL_SIZE", "expected a whole number")
            })?;
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("rightsflow.db").display()),
        }
    }

    /// The mail transport in effect: as configured, or smtp when an SMTP URL is given, or the
    /// file transport (so `cargo run` needs no mail server).
    pub fn mail_transport(&self) -> MailTransportKind {
        match (self.mail_transport, &self.smtp_url) {
            (Some(kind), _) => kind,
            (None, Some(_)) => MailTransportKind::Smtp,
            (None, None) => MailTransportKind::File,
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    pub fn calendar_dir(&self) -> PathBuf {
        self.calendar_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("calendars"))
    }
}

fn env_error(name: &'static str, message: &str) -> ConfigError {
    ConfigError::Env {
        name,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("rf.toml");
        let text = "listen = \"0.0.0.0:9000\"\nadmin_email = \"dpo@example.com\"\n[policy]\nverification_window_days = 10\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let env = |name: &str| (name == "RIGHTSFLOW_LISTEN").then(|| "127.0.0.1:9999".to_owned());
        let c = Config::load_with(Some(&path), env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.admin_email, "dpo@example.com");
        assert_eq!(c.policy.verification_window_days, 10);
        assert_eq!(c.database_url(), "sqlite://data/rightsflow.db");
    }

    #[test]
    fn the_sqlite_log_limit_comes_from_the_environment_and_is_at_least_one_mib() {
        let limit = |v: &'static str| {
            Config::load_with(None, move |name: &str| {
                (name == "RIGHTSFLOW_SQLITE_WAL_LIMIT_MB").then(|| v.to_owned())
            })
            .map(|c| c.sqlite_wal_limit_mb)
            .map_err(|e| e.to_string())
        };
        assert_eq!(limit("64").map(|mb| mb.get()), Ok(64));
        for bad in ["0", "-1", "lots"] {
            let err = limit(bad).unwrap_err();
            assert!(
                err.contains("RIGHTSFLOW_SQLITE_WAL_LIMIT_MB"),
                "{bad}: {err}"
            );
        }
        let c = Config::load_with(None, |_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.sqlite_wal_limit_mb, crate::storage::db::WAL_LIMIT_MB);
        // Nor 0 from the file.
        let err = file_error("sqlite_wal_limit_mb = 0\n");
        assert!(err.contains("sqlite_wal_limit_mb"), "{err}");
    }

    /// What loading a config file of `text` fails with.
    fn file_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        Config::load_with(Some(&path), |_| None)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_values_are_reported_with_their_source() {
        let env = |name: &str| (name == "RIGHTSFLOW_LOG_FORMAT").then(|| "xml".to_owned());
        let err = Config::load_with(None, env)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("RIGHTSFLOW_LOG_FORMAT"), "{err}");
        let err = file_error("listne = 1");
        assert!(err.contains("bad.toml") && err.contains("listne"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config {
            jwt_secret: Some(Secret::new("hunter2")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
