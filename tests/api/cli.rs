//! The `rightsflow` binary's subcommands, run as a user would run them.

use std::process::Command;

fn rightsflow(args: &[&str], data_dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rightsflow"))
        .args(args)
        .env("RIGHTSFLOW_DATA_DIR", data_dir)
        .env_remove("RIGHTSFLOW_DATABASE_URL")
        .env_remove("RIGHTSFLOW_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in:\n{text}"))
}

#[test]
fn deadline_counts_fifteen_chinese_working_days_around_the_2026_holidays() {
    let dir = tempfile::tempdir().unwrap();
    // National Day: 1–7 October off, Saturday 10 October worked.
    let (ok, out, err) = rightsflow(
        &[
            "deadline",
            "--jurisdiction",
            "cn",
            "--from",
            "2026-09-28T10:00:00+08:00",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(
        line(&out, "due:"),
        "due: 2026-10-23 (ends 2026-10-23T23:59:59+08:00)"
    );
    assert!(line(&out, "extended:").contains("none"));
    // Spring Festival: Saturday 14 February and Saturday 28 February worked, 15–23 February off.
    let (_, out, _) = rightsflow(
        &["deadline", "--from", "2026-02-09T10:00:00+08:00"],
        dir.path(),
    );
    assert_eq!(
        line(&out, "due:"),
        "due: 2026-03-06 (ends 2026-03-06T23:59:59+08:00)"
    );
    // Late on 28 September in UTC is already 29 September in Shanghai.
    let (_, out, _) = rightsflow(&["deadline", "--from", "2026-09-28T20:00:00Z"], dir.path());
    assert!(
        line(&out, "from:").contains("local day 2026-09-29"),
        "{out}"
    );
}

#[test]
fn deadline_warns_when_a_year_has_no_calendar_and_uses_one_an_operator_adds() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "deadline",
        "--jurisdiction",
        "cn",
        "--from",
        "2026-12-20T10:00:00+08:00",
    ];
    let (_, out, _) = rightsflow(&args, dir.path());
    assert!(line(&out, "warning:").contains("2027"), "{out}");
    let weekends_only = line(&out, "due:").to_owned();

    // An operator adds 2027 without a rebuild: 1 January 2027 off.
    std::fs::create_dir_all(dir.path().join("calendars")).unwrap();
    std::fs::write(
        dir.path().join("calendars/cn-2027.toml"),
        "region = \"cn\"\nyear = 2027\nsource = \"test\"\ndays_off = [\"2027-01-01\"]\nmake_up_workdays = []\n",
    )
    .unwrap();
    let (ok, out, err) = rightsflow(&args, dir.path());
    assert!(ok, "{err}");
    assert!(!out.contains("warning:"), "{out}");
    assert_ne!(
        line(&out, "due:"),
        weekends_only,
        "the added holiday moved the due date"
    );
}

#[test]
fn deadline_for_eu_and_california_shows_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out, _) = rightsflow(
        &[
            "deadline",
            "--jurisdiction",
            "eu",
            "--from",
            "2026-01-31T12:00:00Z",
        ],
        dir.path(),
    );
    assert!(line(&out, "due:").starts_with("due: 2026-03-02 "), "{out}");
    assert!(
        line(&out, "extended:").starts_with("extended: 2026-04-30 "),
        "{out}"
    );
    let (_, out, _) = rightsflow(
        &[
            "deadline",
            "--jurisdiction",
            "us-ca",
            "--from",
            "2026-03-01T18:00:00Z",
            "--json",
        ],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["due"]["date"].as_str(), v["extended"]["date"].as_str()),
        (Some("2026-04-15"), Some("2026-05-30"))
    );
    let (ok, _, err) = rightsflow(&["deadline", "--jurisdiction", "mars"], dir.path());
    assert!(!ok && err.contains("jurisdiction"), "{err}");
}

#[test]
fn staff_add_and_migrate_work_on_a_fresh_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = rightsflow(&["migrate"], dir.path());
    assert!(ok, "{err}");
    assert!(out.contains("sqlite"));
    let (ok, out, err) = rightsflow(
        &[
            "staff",
            "add",
            "--email",
            "dpo@example.com",
            "--role",
            "reviewer",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("added dpo@example.com as reviewer"));
    assert!(line(&out, "password:").len() > "password: ".len() + 12);
    let (ok, _, err) = rightsflow(
        &[
            "staff",
            "add",
            "--email",
            "dpo@example.com",
            "--role",
            "reviewer",
        ],
        dir.path(),
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = rightsflow(
        &["staff", "add", "--email", "x@example.com", "--role", "boss"],
        dir.path(),
    );
    assert!(!ok && err.contains("--role"), "{err}");
}
