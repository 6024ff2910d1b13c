//! `rightsflow opendsr …`: the controllers that may send OpenDSR requests, and our signing
//! key. An operator at the machine acts as the system (in the audit log).

use anyhow::bail;
use clap::Subcommand;

use crate::config::Config;
use crate::interop::opendsr::service as opendsr;
use crate::service::now;
use crate::startup::open_database;

#[derive(Debug, Subcommand)]
pub enum OpendsrCommand {
    /// Register a controller, or give a registered one a new bearer token (the old one ends).
    /// Prints the token once; only its digest is stored. Logged in the audit log.
    ControllerAdd {
        /// The controller's id (letters, digits, '_' or '-'); `controller_id` in answers.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// Where the controller's status callbacks may go (e.g. https://controller.example.com);
        /// without it the controller gets no callbacks and polls.
        #[arg(long)]
        callback_origin: Option<String>,
    },
    /// Turn a controller off (its token stops working) or on again. Logged in the audit log.
    ControllerSet {
        #[arg(long)]
        id: String,
        /// true or false.
        #[arg(long, action = clap::ArgAction::Set)]
        active: bool,
    },
    /// List the registered controllers.
    Controllers,
    /// Make a new P-256 signing key: prints it as PKCS#8 PEM (for
    /// RIGHTSFLOW_OPENDSR_SIGNING_KEY; keep it secret, outside the repository). Have a
    /// certificate issued for it to the processor domain (opendsr.certificate_file).
    Keygen,
    /// Print the public key of the configured signing key (PEM).
    PublicKey,
}

pub fn run(config: &Config, action: OpendsrCommand) -> anyhow::Result<()> {
    let system = crate::domain::Actor::System;
    match action {
        OpendsrCommand::Keygen => print!(
            "{}",
            crate::interop::opendsr::generate_key().map_err(anyhow::Error::msg)?
        ),
        OpendsrCommand::PublicKey => {
            match config
                .opendsr
                .settings(&config.public_url())
                .map_err(anyhow::Error::msg)?
            {
                Some(s) => print!("{}", s.public_key_pem()),
                None => bail!("opendsr.signing_key is not set"),
            }
        }
        OpendsrCommand::ControllerAdd {
            id,
            name,
            callback_origin,
        } => {
            let db = open_database(config)?;
            let origin = callback_origin.as_deref();
            let token = opendsr::register_controller(&db, &system, &id, &name, origin, now())?;
            println!("controller {id} registered; its bearer token (shown once): {token}");
        }
        OpendsrCommand::ControllerSet { id, active } => {
            let db = open_database(config)?;
            opendsr::set_controller_active(&db, &system, &id, active, now())?;
            println!(
                "controller {id} {}",
                if active { "enabled" } else { "disabled" }
            );
        }
        OpendsrCommand::Controllers => {
            let db = open_database(config)?;
            for c in opendsr::controllers(&db)? {
                let state = if c.active { "active" } else { "disabled" };
                println!("{}\t{}\t{state}", c.id, c.name);
            }
        }
    }
    Ok(())
}
