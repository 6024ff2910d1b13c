//! What every protocol does with a request it receives: submit it as one of ours, with the
//! protocol's own row written in the same transaction, the first code sent when our own proof
//! will be needed, and the sender's attestation of identity recorded (`agent_attested`: a
//! DRP agent's or an OpenDSR controller's word, weaker than ours; docs/INTEROP.md).

use chrono::{DateTime, Utc};

use crate::domain::{identity, Actor, Command, VerificationMethod};
use crate::service::requests::{self, NewRequest};
use crate::service::{verification, ServiceError, Services};
use crate::storage::rows::StoredRequest;
use crate::storage::{DbConnection, StoreError};

pub fn submit<F>(
    s: &Services,
    new: NewRequest,
    attested: bool,
    link: F,
    now: DateTime<Utc>,
) -> Result<StoredRequest, ServiceError>
where
    F: Fn(&mut DbConnection, &StoredRequest) -> Result<(), StoreError>,
{
    let proofs: &[VerificationMethod] = if attested {
        &[VerificationMethod::AgentAttested]
    } else {
        &[]
    };
    let needs_code = identity::missing(s.policy().identity(new.kind), None, proofs).is_some();
    let submitted = requests::submit_with(s, new, &Actor::Subject, now, |c, request| {
        if needs_code {
            // As the API's submission: a code that cannot be made is not fatal (the user asks
            // for another on the page).
            match verification::prepare_code(s, request, now) {
                Ok(code) => code.store(c)?,
                Err(e) => tracing::warn!(error = %e, "could not make the first code"),
            }
        }
        link(c, request)
    })?;
    let mut request = submitted.request;
    if attested {
        let attest = Command::Verify {
            method: VerificationMethod::AgentAttested,
            evidence: None,
        };
        request = requests::act(s, &request.id, &Actor::System, &attest, None, now)?;
    }
    Ok(request)
}
