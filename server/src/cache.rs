//! A map that holds at most a set number of entries, for the verified logs
//! a relay keeps in memory: what was used least recently goes first. A
//! lookup only stamps the entry (it needs no write lock); the oldest tenth
//! is dropped at once when the map is full, so eviction costs one scan per
//! tenth of the capacity inserted.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Bounded<K, V> {
    map: HashMap<K, (V, AtomicU64)>,
    cap: usize,
    tick: AtomicU64,
}

impl<K: Eq + Hash + Copy, V> Bounded<K, V> {
    /// Holds at most `cap` entries (at least one).
    pub fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            cap: cap.max(1),
            tick: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::Relaxed)
    }

    /// The entry for `k`, marked as just used.
    pub fn get(&self, k: &K) -> Option<&V> {
        let (v, used) = self.map.get(k)?;
        used.store(self.now(), Ordering::Relaxed);
        Some(v)
    }

    /// Holds `v` for `k`, dropping the least recently used tenth first if
    /// the map is full.
    pub fn insert(&mut self, k: K, v: V) {
        if !self.map.contains_key(&k) && self.map.len() >= self.cap {
            let mut ages: Vec<(u64, K)> = self
                .map
                .iter()
                .map(|(k, (_, used))| (used.load(Ordering::Relaxed), *k))
                .collect();
            let n = (self.cap / 10).max(1);
            ages.select_nth_unstable_by_key(n - 1, |(used, _)| *used);
            for (_, k) in &ages[..n] {
                self.map.remove(k);
            }
        }
        let used = AtomicU64::new(self.now());
        self.map.insert(k, (v, used));
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|(v, _)| v)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.map.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (v, _))| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_and_the_map_stays_bounded() {
        let mut m = Bounded::new(10);
        for k in 0..10u32 {
            m.insert(k, k);
        }
        // 0 used again: 1 is now the oldest.
        assert_eq!(m.get(&0), Some(&0));
        m.insert(10, 10);
        assert_eq!(m.len(), 10);
        assert!(m.get(&1).is_none(), "the oldest was dropped");
        assert!(m.get(&0).is_some(), "a recently used one was kept");
        for k in 11..1000 {
            m.insert(k, k);
            assert!(m.len() <= 10);
        }
        // Replacing a held entry drops nothing.
        let before = m.len();
        m.insert(999, 0);
        assert_eq!(m.len(), before);
        assert_eq!(m.get(&999), Some(&0));
    }
}
