//! Browser tests of the self-service portal: headless Chromium driven through chromedriver
//! (W3C WebDriver, `webdriver.rs`), against a real application on loopback that mails to a
//! real SMTP server on loopback. A person fills each form, reads the code from the mail,
//! verifies, follows the request while staff act through the API, answers a question and
//! downloads a result. Screenshots land in target/screenshots/.
//!
//! Runs on SQLite: the pages are the same whatever the database (the API suite covers both).

#![allow(clippy::unwrap_used)]

#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/smtp.rs"]
mod smtp;
mod webdriver;

mod console;
mod journeys;
mod pages;

use helpers::{spawn_app_with_sink, Backend, TestApp};
use webdriver::Browser;

/// An application mailing to a loopback SMTP server, and a browser preferring `language`;
/// None when the browser is not installed (and not required).
pub async fn start(language: &str) -> Option<(TestApp, Browser)> {
    start_with(language, |_| {}).await
}

pub async fn start_with(
    language: &str,
    tweak: impl FnOnce(&mut rightsflow::config::Config),
) -> Option<(TestApp, Browser)> {
    if !webdriver::available() {
        return None;
    }
    let app = spawn_app_with_sink(Backend::Sqlite, tweak).await.unwrap();
    let browser = tokio::task::spawn_blocking({
        let language = language.to_owned();
        move || Browser::start(&language)
    })
    .await
    .unwrap();
    Some((app, browser))
}

/// Where screenshots go: target/screenshots/ (not committed).
pub fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(format!("{name}.png"))
}
