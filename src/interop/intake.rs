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
    F: Fn(&mut DbConnection, &StoredRequest) -> Result<(), StoreError> + Sync,
{
    let proofs: &[VerificationMethod] = if attested {
        &[VerificationMethod::AgentAttested]
    } else {
        &[]
    };
    let needs_code = identity::missing(s.policy().identity(new.kind), None, proofs).is_some();
    let attest = Command::Verify {
        method: VerificationMethod::AgentAttested,
        evidence: None,
    };
    // The attestation is recorded in the submission's transaction: a crash between the two
    // would leave a request waiting for a code it was never sent (none is made when the
    // attestation is enough). `submit_with` may run this more than once (a colliding
    // reference), so what it made is kept aside, the last run's winning (behind a mutex: on
    // SQLite the write may run on another thread, `write_gate`).
    let attested_request = std::sync::Mutex::new(None);
    let submitted = requests::submit_with(s, new, &Actor::Subject, now, |request| {
        // As the API's submission: the code is made before the write (outside SQLite's one
        // writer's turn), and one that cannot be made is not fatal (the user asks for another
        // on the page).
        let code = needs_code
            .then(|| verification::prepare_code(s, request, now))
            .and_then(|made| {
                made.map_err(|e| tracing::warn!(error = %e, "could not make the first code"))
                    .ok()
            });
        let mut writes = code
            .map(verification::PreparedCode::writes)
            .unwrap_or_default();
        let (request, attested_request, link, attest) =
            (request.clone(), &attested_request, &link, &attest);
        writes.then(move |c: &mut DbConnection| {
            link(c, &request)?;
            if attested {
                let after = requests::act_on(s, c, request.clone(), &Actor::System, attest, now)
                    .map_err(|e| StoreError::Setup(format!("recording the attestation: {e}")))?;
                *attested_request.lock().unwrap_or_else(|p| p.into_inner()) = Some(after);
            }
            Ok(())
        });
        writes
    })?;
    let attested_request = attested_request
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    Ok(attested_request.unwrap_or(submitted.request))
}
