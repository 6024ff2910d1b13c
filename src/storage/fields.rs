//! Personal data in columns, sealed at rest (see `auth::vault`).
//!
//! Storage functions run on a connection the [`Database`](super::Database) handed out; while it
//! is held, that database's vault is in scope on this thread, and these functions seal and
//! open through it. So every writer and reader of a sealed column goes through the same keys
//! without threading them through each call, and a connection made any other way finds no
//! vault and gets an error: personal data is never written in clear by accident.

use std::cell::RefCell;
use std::sync::Arc;

use super::write_gate::Writer;
use super::StoreError;
use crate::auth::vault::{Blind, Vault};

/// One held connection's scope: its number, its database's vault and (SQLite) writer.
type Entry = (u64, Arc<Vault>, Option<Arc<Writer>>);

thread_local! {
    /// The vaults (and, on SQLite, the writers: `write_gate`) of the connections held on this
    /// thread, innermost last.
    static SCOPES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Keeps a vault (and a SQLite database's writer) in scope on this thread until dropped. Not
/// `Send`: the scope belongs to the thread that opened it.
pub struct Scope {
    id: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Scope {
    pub fn enter(vault: &Arc<Vault>, writer: Option<&Arc<Writer>>) -> Scope {
        let id = NEXT.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        SCOPES.with(|s| {
            s.borrow_mut()
                .push((id, Arc::clone(vault), writer.cloned()))
        });
        Scope {
            id,
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Connections may be released in any order: remove this one's entry wherever it is.
        SCOPES.with(|s| s.borrow_mut().retain(|(id, _, _)| *id != self.id));
    }
}

/// The vault of the innermost connection held on this thread. (A process has one database, so
/// one vault; were two databases' connections held at once on one thread, the later one's
/// vault would serve both.)
pub fn vault() -> Result<Arc<Vault>, StoreError> {
    SCOPES
        .with(|s| s.borrow().last().map(|(_, v, _)| Arc::clone(v)))
        .ok_or_else(|| {
            StoreError::Setup("no data key in scope: use a connection from Database::conn".into())
        })
}

/// The writer of the innermost connection held on this thread, on SQLite.
pub fn writer() -> Option<Arc<Writer>> {
    SCOPES.with(|s| s.borrow().last().and_then(|(_, _, w)| w.clone()))
}

/// The place a column value is bound to: `table.column:row`.
pub fn place(column: &str, row: &str) -> String {
    format!("{column}:{row}")
}

pub fn seal(column: &str, row: &str, plain: &str) -> Result<String, StoreError> {
    Ok(vault()?.seal_text(&place(column, row), plain))
}

pub fn seal_opt(
    column: &str,
    row: &str,
    plain: Option<&str>,
) -> Result<Option<String>, StoreError> {
    plain.map(|p| seal(column, row, p)).transpose()
}

/// Opens a stored value; one that does not open is corrupt (changed, moved, or under a key
/// that is no longer configured), and says which.
pub fn open(column: &str, row: &str, stored: &str) -> Result<String, StoreError> {
    vault()?
        .open_text(&place(column, row), stored)
        .map_err(|e| StoreError::corrupt(format!("{column} of {row}: {e}")))
}

pub fn open_opt(
    column: &str,
    row: &str,
    stored: Option<&str>,
) -> Result<Option<String>, StoreError> {
    stored.map(|s| open(column, row, s)).transpose()
}

/// The blind index of an email address or phone number.
pub fn blind(kind: Blind, value: &str) -> Result<String, StoreError> {
    Ok(vault()?.blind(kind, value))
}
