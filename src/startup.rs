//! Building the running application from a `Config`: database, migrations, secrets, the first
//! admin, the HTTP server and the scheduled jobs.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::auth::TokenKeys;
use crate::clock::CalendarSet;
use crate::config::Config;
use crate::service::{now, staff, Services};
use crate::storage::Database;
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
    let db = Database::connect(&config.database_url(), config.database_pool_size)?;
    let applied = db.migrate()?;
    tracing::info!(backend = db.backend().as_str(), applied, "database ready");
    Ok(db)
}

/// The staff-token key: from config, or generated once and kept in the data folder.
fn jwt_secret(config: &Config) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.expose().as_bytes().to_vec());
    }
    let path = config.data_dir.join("jwt-secret");
    let fail = |e: std::io::Error| StartupError::Secrets(format!("{}: {e}", path.display()));
    if !path.exists() {
        std::fs::create_dir_all(&config.data_dir).map_err(fail)?;
        write_private(&path, &crate::auth::subject_token::generate()).map_err(fail)?;
    }
    tracing::warn!(path = %path.display(), "RIGHTSFLOW_JWT_SECRET is not set; using the secret generated in the data folder (set it in production)");
    let text = std::fs::read_to_string(&path).map_err(fail)?;
    Ok(text.trim().as_bytes().to_vec())
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

pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    expiry_every: Option<Duration>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let calendars = load_calendars(&config)?;
        let setup = config.clone();
        let db = tokio::task::spawn_blocking(move || open_database(&setup))
            .await
            .map_err(|e| StartupError::Config(e.to_string()))??;
        let tokens = TokenKeys::new(
            &jwt_secret(&config)?,
            chrono::Duration::minutes(config.staff_token_minutes),
        )
        .map_err(|e| StartupError::Secrets(e.to_string()))?;

        let admin_db = db.clone();
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

        let services = Services::new(db, config.policy.clone(), calendars, tokens);
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
        let body_limit = config.body_limit;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(localize_errors))
                .wrap(from_fn(request_id_header))
                .wrap(TracingLogger::<PrivacyRootSpan>::new())
                .app_data(data.clone())
                .app_data(api::json_config(body_limit))
                .app_data(api::query_config())
                .app_data(api::path_config())
                .app_data(web::PayloadConfig::new(body_limit))
                .configure(api::configure)
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
        let expiry_every = (config.expiry_sweep_seconds > 0)
            .then(|| Duration::from_secs(config.expiry_sweep_seconds));
        Ok(Application {
            port,
            server,
            services,
            expiry_every,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until the server stops (SIGINT/SIGTERM stop it gracefully).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.expiry_every {
            Some(every) => {
                let job = jobs::expiry_loop(self.services.clone(), every);
                tokio::select! {
                    result = self.server => result,
                    () = job => Ok(()),
                }
            }
            None => self.server.await,
        }
    }
}
