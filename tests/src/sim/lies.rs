//! A relay that lies about the case documents: it withholds one of an
//! account's envelopes (the owner's or a colleague's) from every device, or
//! from one device only (two devices shown two histories), loses one from
//! its disk, or swaps the stored bytes of two envelopes of a document; and
//! later stops, putting back what it took. Its devices must take none of it
//! as the truth: a seen mark passes a withheld or lost change only where
//! the change's device has told the others of it (see `casebook::sync` on
//! claims and signals), so once the lies stop every device gets every
//! change, and none is left incomplete.
//!
//! The audit trails' envelopes are not lied about: they carry the claims
//! among an account's own devices, and what they lose is not sent again
//! (README, "What the relay can still do"). Nor is the rogue's.

use casebook_shared::envelope::Envelope;
use casebook_shared::ids::DeviceId;
use rusqlite::params;

use super::disk::db;

use super::world::World;

/// Per-mille chances, at each step, that the relay tells a new lie, and
/// that it stops telling every lie.
const LIE: u32 = 60;
const STOP: u32 = 20;

/// A lie the relay tells, and what stopping it puts back.
#[derive(Debug)]
pub enum Lie {
    /// Leaves an envelope out of what it serves: to every device, or to
    /// one.
    Withhold { seq: u64, from: Option<DeviceId> },
    /// Deleted from its disk: the row as it was.
    Lost {
        seq: i64,
        doc: Vec<u8>,
        env_id: Vec<u8>,
        bytes: Vec<u8>,
    },
    /// The stored bytes of two envelopes of one document, swapped.
    Swapped {
        a: (i64, Vec<u8>),
        b: (i64, Vec<u8>),
    },
}

/// A stored envelope: sequence number, document, envelope id, bytes.
type Row = (i64, Vec<u8>, Vec<u8>, Vec<u8>);

impl World {
    /// At each step: maybe tell a new lie, maybe stop telling them all.
    pub fn relay_lies(&mut self) {
        let Some(mut rng) = self.lies.take() else {
            return;
        };
        if rng.chance(LIE) {
            self.lie(&mut rng);
        }
        if rng.chance(STOP) {
            self.stop_lying();
        }
        self.lies = Some(rng);
    }

    /// The accounts' stored envelopes of case documents: sequence number,
    /// document, envelope id and bytes.
    fn honest_envelopes(&self) -> Vec<Row> {
        // Not the rogue's: it keeps no copy, and sends nothing again.
        let rogue = self.rogue.as_ref().map(|r| r.id);
        let accounts: Vec<_> = self
            .accounts
            .iter()
            .filter_map(|a| a.id)
            .filter(|a| Some(*a) != rogue)
            .collect();
        let audits: Vec<_> = accounts
            .iter()
            .map(casebook::audit_sync::audit_doc)
            .collect();
        let c = db(self);
        let rows: Vec<Row> = c
            .prepare(
                "SELECT seq, doc, env_id, bytes FROM envelopes WHERE length(bytes) > 0 ORDER BY seq",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<Result<_, _>>()
            })
            .expect("the relay's envelopes read");
        rows.into_iter()
            .filter(|(_, doc, _, bytes)| {
                audits.iter().all(|a| a.0[..] != doc[..])
                    && Envelope::decode(bytes.clone()).is_ok_and(|e| {
                        accounts.contains(&e.header.account)
                            && e.header.doc.0[..] == doc[..]
                            && Some(e.header.author) != self.to_revoke
                    })
            })
            .collect()
    }

    fn lie(&mut self, rng: &mut super::rng::Rng) {
        let rows = self.honest_envelopes();
        if rows.is_empty() {
            return;
        }
        // Half the time the newest: a change nothing builds on yet, which
        // only its device's word names.
        let pick = match rng.chance(500) {
            true => rows.len() - 1,
            false => rng.below(rows.len()),
        };
        let (seq, doc, env_id, bytes) = rows[pick].clone();
        // One row at a time: what the disk damaged is its own story.
        let busy = |w: &World, seq: i64| {
            w.told_lies.iter().any(|l| touched_seq(l, seq)) || w.damaged.iter().any(|d| d.0 == seq)
        };
        if busy(self, seq) {
            return;
        }
        match rng.below(4) {
            0 => {
                self.relay.withheld.lock().unwrap().push((seq as u64, None));
                self.note(format!("relay withholds envelope {seq}"));
                self.told_lies.push(Lie::Withhold {
                    seq: seq as u64,
                    from: None,
                });
            }
            1 => {
                let live = self.live();
                let d = live[rng.below(live.len())];
                let device = self.home(d).device_id();
                let from = Some(device);
                self.relay.withheld.lock().unwrap().push((seq as u64, from));
                let label = self.devices[d].label.clone();
                self.note(format!("relay withholds envelope {seq} from {label}"));
                self.told_lies.push(Lie::Withhold {
                    seq: seq as u64,
                    from,
                });
            }
            2 => {
                db(self)
                    .execute("DELETE FROM envelopes WHERE seq = ?1", [seq])
                    .expect("the envelope is deleted");
                self.note(format!("relay loses envelope {seq}"));
                self.told_lies.push(Lie::Lost {
                    seq,
                    doc,
                    env_id,
                    bytes,
                });
            }
            _ => {
                let Some(other) = rows
                    .iter()
                    .find(|r| r.1 == doc && r.0 != seq && !busy(self, r.0))
                    .cloned()
                else {
                    return;
                };
                let c = db(self);
                for (at, put) in [(seq, &other.3), (other.0, &bytes)] {
                    c.execute(
                        "UPDATE envelopes SET bytes = ?1 WHERE seq = ?2",
                        params![put, at],
                    )
                    .expect("the envelopes are swapped");
                }
                self.note(format!("relay swaps envelopes {seq} and {}", other.0));
                self.told_lies.push(Lie::Swapped {
                    a: (seq, bytes),
                    b: (other.0, other.3),
                });
            }
        }
    }

    /// Stops every lie: serves what it withheld, and puts back what it
    /// lost or swapped (one a snapshot has since covered stays as the
    /// relay left it).
    pub fn stop_lying(&mut self) {
        if self.told_lies.is_empty() {
            return;
        }
        self.relay.withheld.lock().unwrap().clear();
        let c = db(self);
        for lie in std::mem::take(&mut self.told_lies) {
            match lie {
                Lie::Withhold { .. } => {}
                Lie::Lost {
                    seq,
                    doc,
                    env_id,
                    bytes,
                } => {
                    c.execute(
                        "INSERT OR IGNORE INTO envelopes(seq, doc, env_id, bytes)
                         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS
                         (SELECT 1 FROM snapshots WHERE doc = ?2 AND covers >= ?1)",
                        params![seq, doc, env_id, bytes],
                    )
                    .expect("the envelope is put back");
                }
                Lie::Swapped { a, b } => {
                    for (seq, bytes) in [a, b] {
                        c.execute(
                            "UPDATE envelopes SET bytes = ?1 WHERE seq = ?2 AND length(bytes) > 0",
                            params![bytes, seq],
                        )
                        .expect("the envelope is put back");
                    }
                }
            }
        }
        self.note("relay stops lying");
    }
}

impl World {
    /// As the practice heals: the swapped envelopes are put back, but
    /// what the relay withholds or lost it goes on withholding and never
    /// puts back. The devices that made those changes send them again,
    /// asked by the devices that lack them.
    pub fn keep_lying(&mut self) {
        let (swapped, kept): (Vec<Lie>, Vec<Lie>) = std::mem::take(&mut self.told_lies)
            .into_iter()
            .partition(|l| matches!(l, Lie::Swapped { .. }));
        self.told_lies = swapped;
        self.stop_lying();
        let withheld: Vec<(u64, Option<DeviceId>)> = kept
            .iter()
            .filter_map(|l| match l {
                Lie::Withhold { seq, from } => Some((*seq, *from)),
                _ => None,
            })
            .collect();
        *self.relay.withheld.lock().unwrap() = withheld;
        self.note(format!("relay goes on with {} lie(s)", kept.len()));
    }
}

/// Whether `lie` is about the envelope at `seq`.
pub fn touched_seq(lie: &Lie, seq: i64) -> bool {
    match lie {
        Lie::Withhold { seq: s, .. } => *s as i64 == seq,
        Lie::Lost { seq: s, .. } => *s == seq,
        Lie::Swapped { a, b } => a.0 == seq || b.0 == seq,
    }
}
