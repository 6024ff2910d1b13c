//! Building the running application from a `Config`: database, migrations, secrets, the first
//! admin, the HTTP server and the scheduled jobs.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::auth::vault::Vault;
use crate::auth::TokenKeys;
use crate::clock::CalendarSet;
use crate::config::Config;
use crate::notifications::{Notifier, Shutdown, Worker};
use crate::service::{now, staff, Services};
use crate::storage::{Backend, Database};
use crate::telemetry::{request_id_header, PrivacyRootSpan};
use crate::web::error::localize_errors;
use crate::{jobs, web as api};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] crate::storage::StoreError),
    #[error("holiday calendars: {0}")]
    Calendars(#[from] crate::clock::CalendarError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("secrets: {0}")]
    Secrets(String),
}

/// The built-in holiday calendars plus the operator's folder.
pub fn load_calendars(config: &Config) -> Result<CalendarSet, StartupError> {
    let mut calendars = CalendarSet::builtin();
    let loaded = calendars.load_dir(&config.calendar_dir())?;
    if loaded > 0 {
        tracing::info!(files = loaded, "loaded extra holiday calendars");
    }
    Ok(calendars)
}

/// Opens the database and brings its schema up to date.
pub fn open_database(config: &Config) -> Result<Database, StartupError> {
    let db = Database::connect_with(
        &config.database_url(),
        config.database_pool_size,
        config.database_statement_timeout_seconds,
        config.sqlite_wal_limit_mb,
        Arc::new(vault(config)?),
    )?;
    let applied = db.migrate()?;
    // Events written before the audit chain existed join it, in order.
    let sealed = crate::storage::audit::seal_unsealed(&mut *db.conn()?)?;
    if sealed > 0 {
        tracing::info!(events = sealed, "sealed events into the audit chain");
    }
    tracing::info!(backend = db.backend().as_str(), applied, "database ready");
    Ok(db)
}

/// A secret from config, or generated once (32 random bytes, hex) and kept in the data folder
/// under `file`, with a warning naming the variable that should set it in production.
fn kept_secret(
    config: &Config,
    configured: Option<&crate::config::Secret>,
    file: &str,
    variable: &str,
) -> Result<String, StartupError> {
    if let Some(secret) = configured {
        return Ok(secret.expose().to_owned());
    }
    if config.production {
        return Err(StartupError::Secrets(format!(
            "{variable} is not set: in production mode (RIGHTSFLOW_PRODUCTION=1) secrets are never generated; set it (e.g. `openssl rand -hex 32`) and start again"
        )));
    }
    let path = config.data_dir.join(file);
    let fail = |e: std::io::Error| StartupError::Secrets(format!("{}: {e}", path.display()));
    if !path.exists() {
        std::fs::create_dir_all(&config.data_dir).map_err(fail)?;
        write_private(&path, &random_hex(32)).map_err(fail)?;
    }
    tracing::warn!(path = %path.display(), "{variable} is not set; using the secret generated in the data folder (set it in production)");
    let text = std::fs::read_to_string(&path).map_err(fail)?;
    Ok(text.trim().to_owned())
}

/// The staff-token key.
fn jwt_secret(config: &Config) -> Result<Vec<u8>, StartupError> {
    kept_secret(
        config,
        config.jwt_secret.as_ref(),
        "jwt-secret",
        "RIGHTSFLOW_JWT_SECRET",
    )
    .map(String::into_bytes)
}

/// The keys personal data and results are sealed under: the current data key, the keys it
/// replaced, and the blind indexes' key.
fn vault(config: &Config) -> Result<Vault, StartupError> {
    use crate::auth::sealing::DataKey;
    let hex = kept_secret(
        config,
        config.data_key.as_ref(),
        "data-key",
        "RIGHTSFLOW_DATA_KEY",
    )?;
    let current =
        DataKey::from_hex(&hex).map_err(|e| StartupError::Secrets(format!("data key: {e}")))?;
    let previous = config
        .previous_data_keys
        .iter()
        .map(|k| DataKey::from_hex(k.expose()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartupError::Secrets(format!("previous data keys: {e}")))?;
    let index = kept_secret(
        config,
        config.index_key.as_ref(),
        "index-key",
        "RIGHTSFLOW_INDEX_KEY",
    )?;
    Vault::new(current, previous, &index)
        .map_err(|e| StartupError::Secrets(format!("RIGHTSFLOW_INDEX_KEY: {e}")))
}

/// `bytes` random bytes from the OS-seeded CSPRNG, hex-encoded.
fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

/// The shared parts every process needs: database, policy, calendars, token keys.
pub async fn services(config: &Config) -> Result<Services, StartupError> {
    let calendars = load_calendars(config)?;
    let tokens = TokenKeys::new(
        &jwt_secret(config)?,
        chrono::Duration::minutes(config.staff_token_minutes),
    )
    .map_err(|e| StartupError::Secrets(e.to_string()))?;
    let setup = config.clone();
    let db = tokio::task::spawn_blocking(move || open_database(&setup))
        .await
        .map_err(|e| StartupError::Config(e.to_string()))??;
    let platform = match &config.verification.platform {
        Some(p) => Some(
            crate::service::verification::PlatformVerifier::from_config(p)
                .map_err(|e| StartupError::Config(format!("verification.platform: {e}")))?,
        ),
        None => None,
    };
    let identity = crate::service::IdentitySettings {
        verification: config.verification.clone(),
        platform,
        public_url: config.public_url(),
    };
    let systems =
        crate::fulfilment::registry::Registry::from_config(&config.fulfilment, &config.data_dir)
            .map_err(|e| StartupError::Config(format!("fulfilment: {e}")))?;
    let fulfilment = crate::service::FulfilmentSettings {
        systems,
        consents: config.consents.clone(),
        restriction_notice_days: config.fulfilment.restriction_notice_days,
        drp: config.drp.settings().map_err(StartupError::Config)?,
        opendsr: config
            .opendsr
            .settings(&config.public_url())
            .map_err(StartupError::Config)?,
    };
    let replica = match &config.database_replica_url {
        Some(url) => {
            if Backend::from_url(url) != Backend::Postgres || db.backend() != Backend::Postgres {
                return Err(StartupError::Config(
                    "database_replica_url: a replica is for a PostgreSQL database, and must be one"
                        .into(),
                ));
            }
            // Same keys (it holds the same sealed rows); never migrated (a standby is
            // read-only: it follows the primary's schema).
            Some(
                Database::connect_with(
                    url,
                    config.database_pool_size,
                    config.database_statement_timeout_seconds,
                    config.sqlite_wal_limit_mb,
                    db.vault().clone(),
                )
                .map_err(|e| StartupError::Config(format!("database_replica_url: {e}")))?,
            )
        }
        None => None,
    };
    let services = Services::new(
        db,
        replica,
        config.policy.clone(),
        calendars,
        tokens,
        identity,
        fulfilment,
    );
    // A configuration unlike the one last logged goes into the audit log (its fingerprint:
    // every setting as `Debug` prints it, secrets redacted there; the data key by its id).
    let fingerprint = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{config:?}").as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let noting = services.clone();
    let changed = tokio::task::spawn_blocking(move || {
        crate::service::audit_log::note_configuration(&noting, &fingerprint, now())
    })
    .await
    .map_err(|e| StartupError::Config(e.to_string()))?
    .map_err(|e| StartupError::Config(format!("audit log: {e}")))?;
    if changed {
        tracing::info!("configuration changed since it was last logged: noted in the audit log");
    }
    Ok(services)
}

pub fn notifier(config: &Config) -> Result<Arc<Notifier>, StartupError> {
    let notifier = Notifier::from_config(config)
        .map_err(|e| StartupError::Config(format!("notifications: {e}")))?;
    if let Some(dir) = notifier.mailer.dev_mailbox() {
        tracing::warn!(folder = %dir.display(), "no SMTP server configured: email is written to files, readable at /dev/mail");
    }
    Ok(notifier)
}

/// The background work of a process: scheduled jobs and, optionally, the outbox worker.
pub struct Background {
    services: Services,
    notifier: Arc<Notifier>,
    expiry_every: Option<Duration>,
    retention_days: u32,
    reminders_every: Option<Duration>,
    run_worker: bool,
}

impl Background {
    pub fn new(
        config: &Config,
        services: Services,
        notifier: Arc<Notifier>,
        run_worker: bool,
    ) -> Background {
        let period = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        Background {
            services,
            notifier,
            expiry_every: period(config.expiry_sweep_seconds),
            retention_days: config.retention_days,
            reminders_every: period(config.reminder_sweep_seconds),
            run_worker,
        }
    }

    /// Starts everything; the handles finish after `shutdown` is triggered.
    pub fn start(self, shutdown: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        if let Some(every) = self.expiry_every {
            handles.push(tokio::spawn(jobs::expiry_loop(
                self.services.clone(),
                self.retention_days,
                every,
                shutdown.clone(),
            )));
        }
        if let Some(every) = self.reminders_every {
            let days = self.notifier.reminder_working_days;
            handles.push(tokio::spawn(jobs::reminder_loop(
                self.services.clone(),
                days,
                every,
                shutdown.clone(),
            )));
        }
        if self.run_worker {
            let worker = Worker::new(self.services.clone(), self.notifier.clone());
            handles.push(tokio::spawn(worker.run(shutdown.clone())));
        }
        handles
    }
}

/// Waits for background tasks to finish their current item after shutdown (bounded).
pub async fn drain(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        if tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .is_err()
        {
            tracing::warn!("a background task did not stop within 30 s");
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    notifier: Arc<Notifier>,
    background: Background,
    shutdown: Shutdown,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let services = services(&config).await?;
        let notifier = notifier(&config)?;

        let admin_db = services.db().clone();
        let (email, password) = (config.admin_email.clone(), config.admin_password.clone());
        let generated = tokio::task::spawn_blocking(move || {
            staff::ensure_first_admin(
                &admin_db,
                &email,
                password.as_ref().map(|p| p.expose()),
                now(),
            )
        })
        .await
        .map_err(|e| StartupError::Config(e.to_string()))?
        .map_err(|e| StartupError::Config(format!("creating the first admin: {e}")))?;
        if let Some(password) = generated {
            // Printed, not logged: it is a secret shown once to whoever started the server.
            println!(
                "\nCreated the first admin account.\n  email:    {}\n  password: {password}\nIt is shown only this once; sign in and keep it safe.\n",
                config.admin_email
            );
        }

        let listener =
            TcpListener::bind(&config.listen).map_err(|source| StartupError::Listen {
                address: config.listen.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                address: config.listen.clone(),
                source,
            })?
            .port();
        let data = web::Data::new(services.clone());
        let notifier_data = web::Data::new(notifier.clone());
        let limits = web::Data::new(crate::web::limits::Limits::new(
            &config.rate_limits,
            services.db().clone(),
        ));
        let body_limit = config.body_limit;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(crate::web::nul::refuse_nul))
                .wrap(from_fn(crate::web::limits::limit_every_request))
                .wrap(from_fn(localize_errors))
                .wrap(from_fn(crate::web::headers::security_headers))
                .wrap(from_fn(request_id_header))
                .wrap(TracingLogger::<PrivacyRootSpan>::new())
                .app_data(data.clone())
                .app_data(notifier_data.clone())
                .app_data(limits.clone())
                .app_data(api::json_config(body_limit))
                .app_data(api::query_config())
                .app_data(api::path_config())
                .app_data(web::PayloadConfig::new(body_limit))
                .configure(|cfg| api::configure(cfg, &notifier_data))
                .default_service(web::to(api::not_found))
        })
        .listen(listener)
        .map_err(|source| StartupError::Listen {
            address: config.listen.clone(),
            source,
        })?
        .shutdown_timeout(10)
        .run();
        tracing::info!(port, "listening");
        let background = Background::new(
            &config,
            services.clone(),
            notifier.clone(),
            config.worker.in_serve,
        );
        Ok(Application {
            port,
            server,
            services,
            notifier,
            background,
            shutdown: Shutdown::default(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// Stops the background work (the server itself stops on SIGINT/SIGTERM).
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Stops the HTTP server from elsewhere (tests, embedding).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGINT/SIGTERM stop it gracefully), then lets the worker
    /// finish the row it holds and give back the rest.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = self.shutdown;
        let handles = self.background.start(&shutdown);
        let result = self.server.await;
        shutdown.trigger();
        drain(handles).await;
        result
    }
}
