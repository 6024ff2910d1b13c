//! What registering a protocol's peer (a DRP agent, an OpenDSR controller) checks, whatever the
//! protocol: who may, and the id and name given.

use crate::domain::Actor;
use crate::service::ServiceError;

/// Admins only; the command line acts as the system.
pub fn require_admin(who: &Actor) -> Result<(), ServiceError> {
    if who.administers() || matches!(who, Actor::System) {
        Ok(())
    } else {
        Err(ServiceError::NotPermitted)
    }
}

/// An id as the networks' directories write them (`[A-Z_]+`), digits and dashes allowed.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A display name: trimmed, 1 to 200 characters; the error names `what`.
pub fn checked_name<'a>(name: &'a str, what: &str) -> Result<&'a str, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(format!("the {what}'s name is 1 to 200 characters"));
    }
    Ok(name)
}
