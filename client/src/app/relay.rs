//! Which relay a home talks to.

use casebook_shared::frames::ErrorCode;

use crate::net::NetError;
use crate::{Error, Home, Result};

impl Home {
    /// Points this home at its relay's new address, or at its re-issued
    /// certificate. It is the same relay (the same data, moved or given a
    /// new certificate), so what is queued here is kept and sent there, and
    /// what was seen stays seen. The new address must answer with the
    /// pinned certificate and, once the account is registered, know it.
    pub async fn set_relay(&mut self, addr: &str, fingerprint: [u8; 32]) -> Result<()> {
        let conn = self.setup.reach(addr, fingerprint).await?;
        if self.id.record.registered {
            let known = conn
                .authenticate(&self.id.signer, Some(self.account_id()))
                .await;
            conn.close().await;
            match known {
                Ok(_) => {}
                Err(NetError::Relay {
                    code: ErrorCode::NotFound,
                    ..
                }) => return Err(Error::NotThisRelay(addr.to_string())),
                Err(e) => return Err(e.into()),
            }
        } else {
            conn.close().await;
        }
        self.id.record.relay = addr.to_string();
        self.id.record.fingerprint = fingerprint;
        self.save_identity()?;
        self.trail().record(
            &format!(
                "relay set to {addr} ({})",
                casebook_shared::fingerprint::format(&fingerprint)
            ),
            None,
        )
    }
}
