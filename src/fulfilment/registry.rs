//! The data systems approved requests are fulfilled in: from the config, each with its checked
//! dataset description, and the demo platform unless it is turned off.

use std::path::Path;

use super::dataset::Dataset;
use super::sql::Target;
use crate::config::FulfilmentConfig;

pub struct System {
    pub name: String,
    pub label: String,
    /// Connection URL (may hold a password: not for logs).
    pub url: String,
    pub dataset: Dataset,
}

#[derive(Default)]
pub struct Registry {
    systems: Vec<System>,
}

/// The demo platform's name in tasks and reports.
pub const DEMO: &str = "weimacms-demo";

impl Registry {
    /// Loads every configured system's description (an error names the system and the
    /// mistake) and, unless turned off, creates the demo platform's database on first start.
    pub fn from_config(cfg: &FulfilmentConfig, data_dir: &Path) -> Result<Registry, String> {
        let mut systems = vec![];
        if cfg.demo_platform {
            let path = data_dir.join("demo-platform.db");
            ensure_demo(&path)?;
            systems.push(System {
                name: DEMO.into(),
                label: "WEIMACMS 演示平台 / demo platform".into(),
                url: path.display().to_string(),
                dataset: Dataset::parse(super::DEMO_PLATFORM_DATASET)?,
            });
        }
        for s in &cfg.systems {
            let text = std::fs::read_to_string(&s.dataset).map_err(|e| {
                format!(
                    "system {}: cannot read {}: {e}",
                    s.name,
                    s.dataset.display()
                )
            })?;
            let dataset = Dataset::parse(&text).map_err(|e| format!("system {}: {e}", s.name))?;
            // The name becomes file names in packages and appears in notes: plain words only.
            if !(1..=64).contains(&s.name.len())
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "system name {:?}: use 1-64 of a-z, 0-9, - and _",
                    s.name
                ));
            }
            if systems.iter().any(|x: &System| x.name == s.name) {
                return Err(format!("system {} is configured twice", s.name));
            }
            systems.push(System {
                name: s.name.clone(),
                label: s.label.clone().unwrap_or_else(|| s.name.clone()),
                url: s.url.expose().to_owned(),
                dataset,
            });
        }
        Ok(Registry { systems })
    }

    pub fn new(systems: Vec<System>) -> Registry {
        Registry { systems }
    }

    pub fn systems(&self) -> &[System] {
        &self.systems
    }

    pub fn find(&self, name: &str) -> Option<&System> {
        self.systems.iter().find(|s| s.name == name)
    }
}

/// Creates the demo platform's SQLite file once: built under a temporary name and renamed, so
/// instances starting together never see half of it.
fn ensure_demo(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
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
