//! The data systems approved requests are fulfilled in: from the config, each with how it is
//! reached (its own database through a checked dataset description, a signed HTTP endpoint, or
//! staff by hand), and the demo platform unless it is turned off.

use std::path::Path;
use std::time::Duration;

use super::dataset::{Dataset, IdentityKey};
use super::sql::Target;
use crate::config::{ConnectorKind, FulfilmentConfig, SystemConfig};
use crate::domain::details::DataCategory;

pub struct System {
    pub name: String,
    pub label: String,
    pub connector: Connector,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// A third party the platform shares data with (told of corrections, deletions and
    /// restrictions), not a system of the platform's own; with what it receives the data for.
    pub recipient: Option<Purpose>,
    /// http and manual: the consent purposes it keeps (a withdrawal is passed on to it).
    pub purposes: Vec<String>,
}

/// What a recipient receives the data for, as the subject reads it.
pub struct Purpose(pub String);

pub enum Connector {
    Sql {
        /// Connection URL (may hold a password: not for logs).
        url: String,
        dataset: Dataset,
    },
    Http(HttpSystem),
    Manual {
        categories: Vec<DataCategory>,
        instructions: String,
    },
}

pub struct HttpSystem {
    /// The endpoint tasks are POSTed to.
    pub url: String,
    /// The first signs; any of them is accepted on answers and callbacks (rotation).
    pub secrets: Vec<String>,
    pub categories: Vec<DataCategory>,
    /// The identity keys it understands: only these are sent.
    pub keys: Vec<IdentityKey>,
}

impl System {
    /// The categories of personal data the system holds.
    pub fn categories(&self) -> Vec<DataCategory> {
        match &self.connector {
            Connector::Sql { dataset, .. } => {
                let mut all: Vec<DataCategory> =
                    dataset.tables.iter().flat_map(|t| t.categories()).collect();
                all.sort_by_key(|c| c.as_str());
                all.dedup();
                all
            }
            Connector::Http(h) => h.categories.clone(),
            Connector::Manual { categories, .. } => categories.clone(),
        }
    }

    /// The consent purposes the system keeps a flag for (withdrawals are passed on to it).
    pub fn purposes(&self) -> Vec<String> {
        match &self.connector {
            Connector::Sql { dataset, .. } => dataset.consents.keys().cloned().collect(),
            _ => self.purposes.clone(),
        }
    }

    /// The connector's name, for the console.
    pub fn kind(&self) -> &'static str {
        match self.connector {
            Connector::Sql { .. } => "sql",
            Connector::Http(_) => "http",
            Connector::Manual { .. } => "manual",
        }
    }
}

#[derive(Default)]
pub struct Registry {
    systems: Vec<System>,
    destinations: Vec<Destination>,
}

/// Another processor a portability package can be sent to.
pub struct Destination {
    pub name: String,
    pub label: String,
    pub http: HttpSystem,
    pub timeout: Duration,
}

/// The demo platform's name in tasks and reports.
pub const DEMO: &str = "weimacms-demo";

/// A name becomes file names in packages and appears in notes: plain words only.
fn name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn connector(s: &SystemConfig) -> Result<Connector, String> {
    let url = || {
        s.url
            .as_ref()
            .map(|u| u.expose().to_owned())
            .ok_or_else(|| "needs a url".to_owned())
    };
    let unused = |what: &str, set: bool| {
        if set {
            Err(format!("{what} does not apply to a {:?} system", s.connector).to_lowercase())
        } else {
            Ok(())
        }
    };
    match s.connector {
        ConnectorKind::Sql => {
            unused("secrets", !s.secrets.is_empty())?;
            unused("keys (the dataset's [subject] says)", !s.keys.is_empty())?;
            unused(
                "purposes (the dataset's [consents] says)",
                !s.purposes.is_empty(),
            )?;
            unused("categories", !s.categories.is_empty())?;
            unused("instructions", s.instructions.is_some())?;
            let path = s.dataset.as_ref().ok_or("needs a dataset description")?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Ok(Connector::Sql {
                url: url()?,
                dataset: Dataset::parse(&text)?,
            })
        }
        ConnectorKind::Http => {
            unused("dataset", s.dataset.is_some())?;
            unused("instructions", s.instructions.is_some())?;
            let url = url()?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err("the url of an http system is http(s)://…".into());
            }
            let secrets: Vec<String> = s.secrets.iter().map(|x| x.expose().to_owned()).collect();
            if secrets.is_empty() || secrets.iter().any(|x| x.len() < 32) {
                return Err("needs secrets of at least 32 characters each".into());
            }
            if s.categories.is_empty() {
                return Err("needs the categories of data it holds".into());
            }
            let keys = if s.keys.is_empty() {
                vec![
                    IdentityKey::PlatformUserId,
                    IdentityKey::Email,
                    IdentityKey::Phone,
                ]
            } else {
                s.keys.clone()
            };
            Ok(Connector::Http(HttpSystem {
                url,
                secrets,
                categories: s.categories.clone(),
                keys,
            }))
        }
        ConnectorKind::Manual => {
            unused("url", s.url.is_some())?;
            unused("keys", !s.keys.is_empty())?;
            unused("dataset", s.dataset.is_some())?;
            unused("secrets", !s.secrets.is_empty())?;
            if s.categories.is_empty() {
                return Err("needs the categories of data it holds".into());
            }
            let instructions = s
                .instructions
                .clone()
                .filter(|i| !i.trim().is_empty())
                .ok_or("needs instructions for staff")?;
            Ok(Connector::Manual {
                categories: s.categories.clone(),
                instructions,
            })
        }
    }
}

impl Registry {
    /// Loads every configured system (an error names the system and the mistake) and, unless
    /// turned off, creates the demo platform's database on first start.
    pub fn from_config(cfg: &FulfilmentConfig, data_dir: &Path) -> Result<Registry, String> {
        let mut systems = vec![];
        if cfg.demo_platform {
            let path = data_dir.join("demo-platform.db");
            ensure_demo(&path)?;
            systems.push(System {
                name: DEMO.into(),
                label: "WEIMACMS 演示平台 / demo platform".into(),
                connector: Connector::Sql {
                    url: path.display().to_string(),
                    dataset: Dataset::parse(super::DEMO_PLATFORM_DATASET)?,
                },
                timeout: Duration::from_secs(30),
                recipient: None,
                purposes: vec![],
            });
        }
        let recipients = cfg.recipients.iter().map(|r| (r, true));
        for (s, is_recipient) in cfg.systems.iter().map(|s| (s, false)).chain(recipients) {
            if !name_ok(&s.name) {
                return Err(format!(
                    "system name {:?}: use 1-64 of a-z, 0-9, - and _",
                    s.name
                ));
            }
            if systems.iter().any(|x: &System| x.name == s.name) {
                return Err(format!("system {} is configured twice", s.name));
            }
            let connector = connector(s).map_err(|e| format!("system {}: {e}", s.name))?;
            if is_recipient && matches!(connector, Connector::Sql { .. }) {
                return Err(format!(
                    "recipient {}: a recipient is reached by http or by hand (manual)",
                    s.name
                ));
            }
            let recipient = match (is_recipient, &s.purpose) {
                (true, Some(p)) if !p.trim().is_empty() => Some(Purpose(p.clone())),
                (true, _) => {
                    return Err(format!(
                        "recipient {}: needs the purpose it receives data for",
                        s.name
                    ))
                }
                (false, Some(_)) => {
                    return Err(format!("system {}: purpose is for recipients", s.name))
                }
                (false, None) => None,
            };
            systems.push(System {
                name: s.name.clone(),
                label: s.label.clone().unwrap_or_else(|| s.name.clone()),
                connector,
                timeout: Duration::from_secs(s.timeout_seconds.clamp(1, 3600)),
                recipient,
                purposes: s.purposes.clone(),
            });
        }
        let mut destinations: Vec<Destination> = vec![];
        for d in &cfg.destinations {
            if !name_ok(&d.name) || destinations.iter().any(|x| x.name == d.name) {
                return Err(format!("destination {:?}: a plain name, once", d.name));
            }
            // Packages leave only encrypted: https, except to this machine (tests, a local
            // relay).
            let url = d.url.as_ref().map(|u| u.expose()).unwrap_or_default();
            if !(url.starts_with("https://") || url.starts_with("http://127.0.0.1")) {
                return Err(format!("destination {}: the url must be https://", d.name));
            }
            let Connector::Http(http) = connector(&SystemConfig {
                categories: vec![DataCategory::Account],
                ..d.clone()
            })
            .map_err(|e| format!("destination {}: {e}", d.name))?
            else {
                return Err(format!("destination {}: connector = \"http\"", d.name));
            };
            destinations.push(Destination {
                name: d.name.clone(),
                label: d.label.clone().unwrap_or_else(|| d.name.clone()),
                http,
                timeout: Duration::from_secs(d.timeout_seconds.clamp(1, 3600)),
            });
        }
        Ok(Registry {
            systems,
            destinations,
        })
    }

    pub fn new(systems: Vec<System>) -> Registry {
        Registry {
            systems,
            destinations: vec![],
        }
    }

    /// The processors a package can be sent to.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    pub fn destination(&self, name: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.name == name)
    }

    /// Every system and recipient (tasks name either).
    pub fn systems(&self) -> &[System] {
        &self.systems
    }

    /// The third parties data is shared with.
    pub fn recipients(&self) -> impl Iterator<Item = &System> {
        self.systems.iter().filter(|s| s.recipient.is_some())
    }

    pub fn find(&self, name: &str) -> Option<&System> {
        self.systems.iter().find(|s| s.name == name)
    }
}

/// Creates the demo platform's SQLite file once: built under a temporary name and renamed, so
/// instances starting together never see half of it.
fn ensure_demo(path: &Path) -> Result<(), String> {
    if path.exists() {
        return upgrade_demo(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("demo platform: {e}"))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let built = Target::open(&tmp.display().to_string())
        .and_then(|mut t| t.run_script(super::DEMO_PLATFORM_SQL))
        .map_err(|e| format!("demo platform: {e}"));
    let result = built.and_then(|()| {
        if path.exists() {
            Ok(())
        } else {
            std::fs::rename(&tmp, path).map_err(|e| format!("demo platform: {e}"))
        }
    });
    let _ = std::fs::remove_file(&tmp);
    result?;
    tracing::info!(path = %path.display(), "demo platform created");
    Ok(())
}

/// Adds what later versions of the demo platform have to a file an earlier one created (the
/// consent flags); a column that is there already is left alone.
fn upgrade_demo(path: &Path) -> Result<(), String> {
    let mut t =
        Target::open(&path.display().to_string()).map_err(|e| format!("demo platform: {e}"))?;
    for column in [
        "consent_recommendations",
        "consent_partner_sharing",
        "consent_location",
        "consent_marketing",
    ] {
        let sql = format!("ALTER TABLE users ADD COLUMN {column} BOOLEAN NOT NULL DEFAULT TRUE");
        if let Err(e) = t.run_script(&sql) {
            if !e.to_string().contains("duplicate column") {
                return Err(format!("demo platform: {e}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn load(s: SystemConfig) -> Result<Registry, String> {
        let cfg = FulfilmentConfig {
            demo_platform: false,
            systems: vec![s],
            ..Default::default()
        };
        Registry::from_config(&cfg, Path::new("/nonexistent"))
    }

    fn http() -> SystemConfig {
        SystemConfig {
            connector: ConnectorKind::Http,
            url: Some(Secret::new("https://crm.internal/tasks")),
            dataset: None,
            secrets: vec![Secret::new("a-shared-secret-of-32-characters!")],
            categories: vec![DataCategory::Account],
            ..SystemConfig::sql("crm", "", "".into())
        }
    }

    #[test]
    fn systems_are_checked_whole_when_loaded() {
        assert!(load(http()).is_ok());
        let mistakes = [
            (
                "../crm",
                SystemConfig {
                    name: "../crm".into(),
                    ..http()
                },
            ),
            (
                "secrets",
                SystemConfig {
                    secrets: vec![Secret::new("short")],
                    ..http()
                },
            ),
            (
                "secrets",
                SystemConfig {
                    secrets: vec![],
                    ..http()
                },
            ),
            (
                "categories",
                SystemConfig {
                    categories: vec![],
                    ..http()
                },
            ),
            (
                "http(s)",
                SystemConfig {
                    url: Some(Secret::new("ftp://crm")),
                    ..http()
                },
            ),
            (
                "dataset",
                SystemConfig {
                    dataset: Some("x.toml".into()),
                    ..http()
                },
            ),
            (
                "instructions",
                SystemConfig {
                    connector: ConnectorKind::Manual,
                    url: None,
                    secrets: vec![],
                    ..http()
                },
            ),
            (
                "url",
                SystemConfig {
                    connector: ConnectorKind::Manual,
                    secrets: vec![],
                    instructions: Some("shred it".into()),
                    ..http()
                },
            ),
            (
                "cannot read",
                SystemConfig::sql("db", "x.db", "/nonexistent/x.toml".into()),
            ),
        ];
        for (word, s) in mistakes {
            let e = load(s).err().unwrap_or_default();
            assert!(e.contains(word), "{word}: {e}");
        }
    }
}
