//! A data system's dataset description (TOML): where the subject's rows are, which categories
//! of personal data each column holds, and what each kind of request does to them. Checked
//! whole when loaded, so a mistake is found at start-up, not halfway through a deletion.
//!
//! ```toml
//! [subject]                      # how a request's identity keys find the subject
//! table = "users"
//! id = "id"                      # what other tables link to
//! keys = { platform_user_id = { column = "id", type = "integer" }, email = { column = "email" } }
//!
//! [[tables]]
//! name = "orders"
//! link = "user_id"               # a column holding the subject's id
//! key = "id"                     # the primary key (needed by the `hash` mask)
//! columns = { order_no = "orders", address = "orders", amount = "orders" }
//! deletion = "anonymise"         # delete | anonymise | keep
//! mask = { address = "null", order_no = "hash", amount = "fixed:0" }
//! restrict = "processing_restricted"   # a boolean column set while processing is restricted
//!
//! [corrections]                  # what a correction's field names mean here
//! name = { table = "users", column = "name", labels = ["姓名", "name"] }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::details::DataCategory;

/// The identity keys a request can carry and a system can understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKey {
    PlatformUserId,
    Email,
    Phone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    #[default]
    Text,
    Integer,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyColumn {
    pub column: String,
    #[serde(default, rename = "type")]
    pub kind: KeyType,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub table: String,
    pub id: String,
    pub keys: BTreeMap<IdentityKey, KeyColumn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Deletion {
    /// The rows go.
    Delete,
    /// The rows stay (other records need them: an order's totals), their personal columns
    /// masked.
    #[default]
    Anonymise,
    /// Kept, e.g. for a legal retention period (PIPL Art. 47): processing stops except storage
    /// and security, and the subject is told.
    Keep,
}

/// How one column is masked when its rows are anonymised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    Null,
    Fixed(String),
    /// A SHA-256 of the value (hex, first 16 characters): still joinable, no longer readable.
    Hash,
    /// The first N characters kept.
    Truncate(usize),
}

impl std::str::FromStr for Mask {
    type Err = String;

    fn from_str(s: &str) -> Result<Mask, String> {
        match s.split_once(':') {
            None if s == "null" => Ok(Mask::Null),
            None if s == "hash" => Ok(Mask::Hash),
            Some(("fixed", v)) => Ok(Mask::Fixed(v.to_owned())),
            Some(("truncate", n)) => n
                .parse()
                .map(Mask::Truncate)
                .map_err(|_| format!("`{s}`: truncate takes a number of characters")),
            _ => Err(format!(
                "`{s}` is not a mask (null, hash, fixed:VALUE, truncate:N)"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: String,
    link: String,
    #[serde(default)]
    key: Option<String>,
    columns: BTreeMap<String, DataCategory>,
    /// What the access report calls a column (`收货地址 / Delivery address`).
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    deletion: Deletion,
    #[serde(default)]
    mask: BTreeMap<String, String>,
    #[serde(default)]
    restrict: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub link: String,
    pub key: Option<String>,
    /// Column -> category, in name order.
    pub columns: BTreeMap<String, DataCategory>,
    pub labels: BTreeMap<String, String>,
    pub deletion: Deletion,
    pub mask: BTreeMap<String, Mask>,
    pub restrict: Option<String>,
}

impl Table {
    /// The categories this table holds.
    pub fn categories(&self) -> impl Iterator<Item = DataCategory> + '_ {
        self.columns.values().copied()
    }

    /// How a column is masked: as described, or emptied.
    pub fn mask_of(&self, column: &str) -> Mask {
        self.mask.get(column).cloned().unwrap_or(Mask::Null)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correctable {
    pub table: String,
    pub column: String,
    /// Other names subjects and staff use for this field ("姓名", "name").
    #[serde(default)]
    pub labels: Vec<String>,
}

/// A boolean column recording one purpose's consent (set to false when it is withdrawn).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentFlag {
    pub table: String,
    pub column: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    subject: Subject,
    tables: Vec<RawTable>,
    #[serde(default)]
    corrections: BTreeMap<String, Correctable>,
    #[serde(default)]
    consents: BTreeMap<String, ConsentFlag>,
}

/// A checked dataset description.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub subject: Subject,
    /// In the order given, the subject's own table last (the account is the last thing to
    /// go; the connector finds the subject's ids before changing anything).
    pub tables: Vec<Table>,
    pub corrections: BTreeMap<String, Correctable>,
    /// Purpose (as in the consent ledger) -> the flag that records it here.
    pub consents: BTreeMap<String, ConsentFlag>,
}

/// SQL identifiers are written into statements (values never are): only plain lower-case
/// names, which need no quoting rules beyond double quotes.
pub fn check_identifier(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a plain SQL name (lower-case letters, digits and _, up to 63)"
        ))
    }
}

/// The most columns a table may describe: each becomes two arguments of the database's JSON
/// object function (PostgreSQL takes 100).
pub const MAX_COLUMNS: usize = 50;

impl Dataset {
    pub fn parse(text: &str) -> Result<Dataset, String> {
        let raw: RawDataset = toml::from_str(text).map_err(|e| e.to_string())?;
        let s = &raw.subject;
        check_identifier(&s.table)?;
        check_identifier(&s.id)?;
        if s.keys.is_empty() {
            return Err("[subject] names no keys".into());
        }
        for k in s.keys.values() {
            check_identifier(&k.column)?;
        }
        let mut tables = vec![];
        for t in raw.tables {
            check_identifier(&t.name)?;
            check_identifier(&t.link)?;
            if let Some(k) = &t.key {
                check_identifier(k)?;
            }
            if t.columns.is_empty() || t.columns.len() > MAX_COLUMNS {
                return Err(format!(
                    "table {}: 1 to {MAX_COLUMNS} columns, not {}",
                    t.name,
                    t.columns.len()
                ));
            }
            for c in t.columns.keys() {
                check_identifier(c)?;
            }
            let mut mask = BTreeMap::new();
            for (column, rule) in &t.mask {
                if !t.columns.contains_key(column) {
                    return Err(format!(
                        "table {}: mask for {column}, which is not among its columns",
                        t.name
                    ));
                }
                let m: Mask = rule.parse()?;
                if m == Mask::Hash && t.key.is_none() {
                    return Err(format!(
                        "table {}: the hash mask of {column} needs the table's `key`",
                        t.name
                    ));
                }
                mask.insert(column.clone(), m);
            }
            if let Some(r) = &t.restrict {
                check_identifier(r)?;
            }
            if let Some(c) = t.labels.keys().find(|c| !t.columns.contains_key(*c)) {
                return Err(format!(
                    "table {}: a label for {c}, which is not among its columns",
                    t.name
                ));
            }
            if tables.iter().any(|x: &Table| x.name == t.name) {
                return Err(format!("table {} is described twice", t.name));
            }
            tables.push(Table {
                name: t.name,
                link: t.link,
                key: t.key,
                columns: t.columns,
                labels: t.labels,
                deletion: t.deletion,
                mask,
                restrict: t.restrict,
            });
        }
        if tables.is_empty() {
            return Err("no [[tables]]".into());
        }
        for (name, c) in &raw.corrections {
            check_identifier(&c.table)?;
            check_identifier(&c.column)?;
            let known = tables
                .iter()
                .any(|t| t.name == c.table && t.columns.contains_key(&c.column));
            if !known {
                return Err(format!(
                    "correction {name}: {}.{} is not a described column",
                    c.table, c.column
                ));
            }
        }
        for (purpose, f) in &raw.consents {
            check_identifier(purpose)?;
            check_identifier(&f.column)?;
            if !tables.iter().any(|t| t.name == f.table) {
                return Err(format!(
                    "consent {purpose}: table {} is not described",
                    f.table
                ));
            }
        }
        // The subject's own table last, as a person would close an account.
        tables.sort_by_key(|t| t.name == raw.subject.table);
        Ok(Dataset {
            subject: raw.subject,
            tables,
            corrections: raw.corrections,
            consents: raw.consents,
        })
    }

    /// The correctable column a field name means (its key or one of its labels, any case).
    pub fn correction_for(&self, field: &str) -> Option<&Correctable> {
        let field = field.trim().to_lowercase();
        self.corrections.iter().find_map(|(name, c)| {
            (name.to_lowercase() == field || c.labels.iter().any(|l| l.to_lowercase() == field))
                .then_some(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("demo/platform.toml");

    #[test]
    fn the_demo_dataset_is_valid_and_its_subject_table_comes_last() {
        let d = Dataset::parse(DEMO).unwrap();
        assert_eq!(d.tables.last().unwrap().name, d.subject.table);
        assert!(d.correction_for("姓名").is_some());
        assert!(d.correction_for(" Email ").is_some());
        assert!(d.correction_for("favourite colour").is_none());
    }

    #[test]
    fn mistakes_are_found_when_loading() {
        let bad = [
            (
                DEMO.replace("name = \"orders\"", "name = \"orders; DROP TABLE users\""),
                "plain SQL name",
            ),
            (
                DEMO.replace("order_no = \"hash\"", "order_no = \"blur\""),
                "is not a mask",
            ),
            (
                DEMO.replace("deletion = \"anonymise\"", "deletion = \"shred\""),
                "unknown variant",
            ),
            (
                DEMO.replacen("address = \"null\"", "nonexistent = \"null\"", 1),
                "not among its columns",
            ),
            (
                DEMO.replacen("city = \"城市", "town = \"城市", 1),
                "a label for town",
            ),
            (
                DEMO.replace(
                    "table = \"users\", column = \"consent_marketing\"",
                    "table = \"members\", column = \"consent_marketing\"",
                ),
                "consent marketing_messages: table members is not described",
            ),
            (
                DEMO.replace("column = \"consent_marketing\"", "column = \"x; --\""),
                "plain SQL name",
            ),
        ];
        for (text, expected) in bad {
            let e = Dataset::parse(&text).unwrap_err();
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn masks_parse() {
        assert_eq!("null".parse::<Mask>(), Ok(Mask::Null));
        assert_eq!(
            "fixed:已注销".parse::<Mask>(),
            Ok(Mask::Fixed("已注销".into()))
        );
        assert_eq!("truncate:3".parse::<Mask>(), Ok(Mask::Truncate(3)));
        assert!("truncate:x".parse::<Mask>().is_err());
    }
}
