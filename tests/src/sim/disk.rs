//! Someone with the relay's disk: flips a byte of a stored envelope (as a
//! failing disk or a hostile operator would), and later puts it right (a
//! restore of that file from a good copy). Every device must refuse the
//! damaged envelope and apply none of it, and once it is put right every
//! device must get it: the seen mark never passes an envelope refused for
//! what the relay could mend.

use rusqlite::{Connection, params};

use super::world::World;

/// Per-mille chances, at each step, that an envelope is damaged, and that
/// what is damaged is put right.
const DAMAGE: u32 = 20;
const REPAIR: u32 = 20;

/// The relay's database, opened beside the relay (which keeps writing).
pub(super) fn db(w: &World) -> Connection {
    let c = Connection::open(w.relay.db_path()).expect("the relay's database opens");
    c.busy_timeout(std::time::Duration::from_secs(30))
        .expect("a busy timeout");
    c
}

impl World {
    /// At each step: maybe damage an envelope, maybe put right what is.
    pub fn disk_acts(&mut self) {
        let Some(mut rng) = self.disk.take() else {
            return;
        };
        if rng.chance(DAMAGE) {
            self.damage(&mut rng);
        }
        if rng.chance(REPAIR) {
            self.repair();
        }
        self.disk = Some(rng);
    }

    fn damage(&mut self, rng: &mut super::rng::Rng) {
        let c = db(self);
        let stored: Vec<(i64, Vec<u8>)> = c
            .prepare("SELECT seq, bytes FROM envelopes WHERE length(bytes) > 0 ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .expect("the relay's envelopes read");
        if stored.is_empty() {
            return;
        }
        let (seq, bytes) = stored[rng.below(stored.len())].clone();
        if self.damaged.iter().any(|(s, _)| *s == seq)
            || self
                .told_lies
                .iter()
                .any(|l| super::lies::touched_seq(l, seq))
        {
            return;
        }
        let mut bad = bytes.clone();
        let at = rng.below(bad.len());
        bad[at] ^= 1 << rng.below(8);
        c.execute(
            "UPDATE envelopes SET bytes = ?1 WHERE seq = ?2",
            params![bad, seq],
        )
        .expect("the envelope is damaged");
        self.note(format!("disk: envelope {seq} damaged at byte {at}"));
        self.damaged.push((seq, bytes));
    }

    /// Puts every damaged envelope back as it was (one a snapshot has since
    /// covered stays as the relay left it: emptied).
    pub fn repair(&mut self) {
        if self.damaged.is_empty() {
            return;
        }
        let c = db(self);
        for (seq, bytes) in std::mem::take(&mut self.damaged) {
            c.execute(
                "UPDATE envelopes SET bytes = ?1 WHERE seq = ?2 AND length(bytes) > 0",
                params![bytes, seq],
            )
            .expect("the envelope is put right");
            self.note(format!("disk: envelope {seq} put right"));
        }
    }
}
