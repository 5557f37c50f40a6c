//! The time, as every decision that depends on it reads it.
//!
//! A share's expiry, a device's "last seen", an audit entry's instant: the
//! client and the relay read them all from a [`Clock`] they were given,
//! never from the system directly, so that a simulation can let days pass
//! in a moment and see every device and the relay agree on what expired.
//! People always get the system clock; a shifted clock only runs ahead of
//! it, by what [`Clock::advance`] added.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Unix seconds: the system's, plus a shift shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    shift: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock, as people run casebook.
    pub fn system() -> Clock {
        Clock { shift: None }
    }

    /// A clock that starts at the system's time and can be moved ahead;
    /// its clones move with it (the relay and every device of a
    /// simulation hold one).
    pub fn adjustable() -> Clock {
        Clock {
            shift: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> u64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let shift = self.shift.as_ref().map_or(0, |s| s.load(Ordering::SeqCst));
        system.saturating_add(shift)
    }

    /// Moves an adjustable clock (and its clones) `secs` ahead; says
    /// whether it could (the system clock is not moved).
    pub fn advance(&self, secs: u64) -> bool {
        match &self.shift {
            Some(s) => {
                s.fetch_add(secs, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_with_its_clones_and_the_system_clock_does_not() {
        let sim = Clock::adjustable();
        let relay = sim.clone();
        let before = relay.now();
        assert!(sim.advance(86_400));
        assert!(relay.now() >= before + 86_400);
        let system = Clock::system();
        assert!(!system.advance(86_400));
        assert!(system.now() < before + 86_400);
    }
}
