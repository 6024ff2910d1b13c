//! A small W3C WebDriver client for the browser tests: enough to open pages, fill forms,
//! click, read text and take screenshots in headless Chromium through chromedriver (both
//! from Debian's packages). Synchronous (ureq): the application and the SMTP server under
//! test run on threads of their own, so a test may block while the browser works.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where chromedriver and Chromium are; override with RIGHTSFLOW_CHROMEDRIVER / _CHROMIUM.
fn chromedriver_path() -> String {
    std::env::var("RIGHTSFLOW_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn chromium_path() -> String {
    std::env::var("RIGHTSFLOW_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// True when the browser is installed; the suite fails (not skips) without it when
/// RIGHTSFLOW_TEST_REQUIRE_BROWSER=1, as in CI.
pub fn available() -> bool {
    let ok = Path::new(&chromedriver_path()).exists() && Path::new(&chromium_path()).exists();
    assert!(
        ok || std::env::var("RIGHTSFLOW_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "RIGHTSFLOW_TEST_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed (apt install chromium chromium-driver fonts-wqy-microhei)"
    );
    if !ok {
        eprintln!("SKIPPED browser test: install chromium and chromium-driver to run it");
    }
    ok
}

/// One chromedriver process and one browser session, ended when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    pub downloads: PathBuf,
    _profile: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// A new headless Chromium that prefers `language` (e.g. "zh-CN" or "en-US").
    pub fn start(language: &str) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            // The browser's own zone, as a person in China would have it (the machine's is UTC):
            // the portal shows times in the zone the page's script reports.
            .env("TZ", "Asia/Shanghai")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = agent
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_path(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--lang={language}"),
                    format!("--user-data-dir={}", profile.path().join("profile").display()),
                    "--window-size=1280,900",
                ],
                "prefs": {
                    "intl.accept_languages": language,
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            downloads,
            _profile: profile,
        };
        let created = b.call("POST", "/session", Some(caps));
        b.session = created["sessionId"].as_str().unwrap().to_owned();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let res = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut res = res.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = res.status();
        let text = res.body_mut().read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "webdriver {method} {path}: {status} {text}"
        );
        v["value"].clone()
    }

    /// A GET that may fail (an element gone stale as the page changed): None instead of a panic.
    fn try_get(&self, path: &str) -> Option<Value> {
        let mut res = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .ok()?;
        let ok = res.status().is_success();
        let v: Value = serde_json::from_str(&res.body_mut().read_to_string().ok()?).ok()?;
        ok.then(|| v["value"].clone())
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens a page (WebDriver waits for it to load).
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    /// Loads the current page again.
    pub fn reload(&self) {
        self.call("POST", &self.s("/refresh"), None);
    }

    pub fn current_url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn title(&self) -> String {
        self.call("GET", &self.s("/title"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn try_find(&self, css: &str) -> Option<Element> {
        let url = format!("{}{}", self.base, self.s("/element"));
        let mut res = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(json!({ "using": "css selector", "value": css }).to_string())
            .unwrap();
        let v: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        v["value"][ELEMENT]
            .as_str()
            .map(|id| Element(id.to_owned()))
    }

    /// The first element matching `css`, waiting up to 10 s for it to appear.
    pub fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}:\n{}",
                self.current_url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn exists(&self, css: &str) -> bool {
        self.try_find(css).is_some()
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Element(e[ELEMENT].as_str().unwrap().to_owned()))
        .collect()
    }

    /// Clicks something that does not leave the page (a checkbox, a radio button, an option).
    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.click_el(&e);
    }

    /// Clicks a link or a submit button and waits until the next page has loaded, so the test
    /// never reads or clicks the page it is leaving.
    pub fn submit(&self, css: &str) {
        self.script("window.__rf_leaving = true; return true;");
        self.click(css);
        self.wait_until("the next page", |b| {
            b.try_script(
                "return window.__rf_leaving !== true && document.readyState === 'complete'",
            )
            .is_some_and(|v| v == true)
        });
    }

    /// A script that may fail while a page is changing.
    fn try_script(&self, script: &str) -> Option<Value> {
        let url = format!("{}{}", self.base, self.s("/execute/sync"));
        let mut res = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(json!({ "script": script, "args": [] }).to_string())
            .ok()?;
        let ok = res.status().is_success();
        let v: Value = serde_json::from_str(&res.body_mut().read_to_string().ok()?).ok()?;
        ok.then(|| v["value"].clone())
    }

    pub fn click_el(&self, e: &Element) {
        self.call("POST", &self.s(&format!("/element/{}/click", e.0)), None);
    }

    /// Types into a field (after clearing it).
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{}/clear", e.0)), None);
        self.call(
            "POST",
            &self.s(&format!("/element/{}/value", e.0)),
            Some(json!({ "text": text })),
        );
    }

    /// Presses keys as a person would, into whatever has the focus (e.g. "\u{E004}" is Tab,
    /// "\u{E007}" Enter).
    pub fn keys_active(&self, text: &str) {
        let keys: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let k = c.to_string();
                [
                    json!({ "type": "keyDown", "value": k }),
                    json!({ "type": "keyUp", "value": k }),
                ]
            })
            .collect();
        let actions = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": keys }] });
        self.call("POST", &self.s("/actions"), Some(actions));
    }

    /// Picks the option with this value in a <select>.
    pub fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"));
    }

    /// The rendered text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        match self.try_find(css) {
            Some(e) => self
                .call("GET", &self.s(&format!("/element/{}/text", e.0)), None)
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        }
    }

    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css);
        self.call(
            "GET",
            &self.s(&format!("/element/{}/attribute/{name}", e.0)),
            None,
        )
        .as_str()
        .map(str::to_owned)
    }

    pub fn property(&self, css: &str, name: &str) -> Value {
        let e = self.find(css);
        self.call(
            "GET",
            &self.s(&format!("/element/{}/property/{name}", e.0)),
            None,
        )
    }

    /// Runs a script in the page (for facts the DOM API cannot give, e.g. the active element).
    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// Saves a PNG of the viewport.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let data = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub fn delete_cookies(&self) {
        self.call("DELETE", &self.s("/cookie"), None);
    }

    /// Waits until `check` holds, re-reading the page (not reloading) every 100 ms, up to 10 s.
    pub fn wait_until(&self, what: &str, check: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on {}",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
