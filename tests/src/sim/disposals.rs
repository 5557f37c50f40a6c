//! The owner disposes of a case now and then, on the laptop, its
//! retention overridden (`case dispose --now`): every device, the
//! colleagues' and the one recovered from the words too, must end without
//! it, across the relay's restores from copies older than the disposal
//! (a device that carried it out gives it back), its lies and its disk's
//! damage. Off unless asked for (`sim::run_disposing`, or
//! `SIM_DISPOSALS=1` for the `simulate` binary), so that the seeds found
//! before replay as they were found.

use super::world::World;

/// Per-mille chance, at each step, that the owner disposes of a case.
const DISPOSE: u32 = 15;

impl World {
    /// At each step: maybe dispose of a case the laptop holds. Not while
    /// the relay lies or its disk is damaged: what the simulation's relay
    /// puts back afterwards it puts back as rows, into a case disposed of
    /// meanwhile, which no real relay does.
    pub fn disposals_act(&mut self) {
        let Some(mut rng) = self.disposals.take() else {
            return;
        };
        if self.told_lies.is_empty() && self.damaged.is_empty() && rng.chance(DISPOSE) {
            let laptop = self.live_of(0)[0];
            let held = self.cases_on(laptop);
            if let Some(&case) = rng.pick(&held) {
                let label = self.devices[laptop].label.clone();
                match self.home(laptop).dispose_case(&case, true) {
                    Ok(()) => {
                        self.disposed.push(case);
                        self.note(format!("{label} disposes of case {}", case.short()));
                    }
                    Err(e) => self.note(format!(
                        "{label} could not dispose of case {}: {e}",
                        case.short()
                    )),
                }
            }
        }
        self.disposals = Some(rng);
    }
}
