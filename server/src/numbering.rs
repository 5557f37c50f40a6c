//! How the relay numbers envelopes across restarts.

/// The lowest sequence number a relay starting now hands out next: the
/// microseconds since 1970. A store raises its counter to it when it opens,
/// so numbers only rise across restarts, and a relay restored from an older
/// copy (on a clock not behind the one it was copied under) never hands
/// out again a number it gave before the restore (devices
/// fetch "after the last number seen", and would skip a reissued one).
pub fn sequence_floor() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
