//! The workflow core. Pure: it imports neither actix, diesel nor lettre. One transition function
//! (`transition::apply`) over typed states and commands decides everything; handlers ask it and
//! store what it returns.

pub mod actor;
pub mod command;
pub mod contact;
pub mod details;
pub mod effect;
pub mod error;
pub mod identity;
pub mod jurisdiction;
pub mod kind;
pub mod locale;
pub mod policy;
pub mod reason;
pub mod reference;
pub mod request;
pub mod status;
pub mod text;
pub mod text_enum;
pub mod transition;

pub use actor::{Actor, Role};
pub use command::{Command, VerificationFailure, VerificationMethod};
pub use contact::{ContactError, EmailAddress, PhoneNumber, SubjectContact};
pub use details::{DetailsError, RequestDetails};
pub use effect::{Effect, Event, Message, Recipient};
pub use error::TransitionError;
pub use identity::{IdentityRequirement, Relationship};
pub use jurisdiction::Jurisdiction;
pub use kind::RequestKind;
pub use locale::{Channel, Locale};
pub use policy::{ClockStart, JurisdictionRules, KindPolicy, Policy};
pub use reason::RejectionReason;
pub use reference::{InvalidReference, Reference};
pub use request::RequestState;
pub use status::Status;
pub use text::{FreeText, FreeTextError};
pub use transition::{allowed_commands, apply, submit, Context, Outcome};
