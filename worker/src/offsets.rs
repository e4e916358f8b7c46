//! Per-partition completion tracking (design guarantee 5). Tasks from one
//! partition finish out of order; the offset handed to Kafka for commit is the
//! lowest offset still in flight, so a committed offset never passes a record
//! whose outcome is not yet durable.

use std::collections::{BTreeSet, HashMap};

/// A record's place: topic, partition, offset, and the assignment generation
/// it was fetched in (completions from an earlier assignment are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPos {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Record offset.
    pub offset: i64,
    generation: u64,
}

#[derive(Debug, Default)]
struct PartitionState {
    generation: u64,
    in_flight: BTreeSet<i64>,
    /// One past the highest offset seen in this generation.
    next: i64,
    /// Last offset returned for commit.
    committed: i64,
}

/// Tracks in-flight records of every assigned partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), PartitionState>,
    generations: u64,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that a record was fetched and is now in flight.
    pub fn started(&mut self, topic: &str, partition: i32, offset: i64) -> RecordPos {
        let key = (topic.to_string(), partition);
        if !self.partitions.contains_key(&key) {
            self.generations += 1;
            let st =
                PartitionState { generation: self.generations, next: offset, committed: offset, ..Default::default() };
            self.partitions.insert(key.clone(), st);
        }
        let st = self.partitions.get_mut(&key).expect("inserted above");
        st.in_flight.insert(offset);
        st.next = st.next.max(offset + 1);
        RecordPos { topic: key.0, partition, offset, generation: st.generation }
    }

    /// Notes that a record's outcome (or skip) is durable. Returns the offset
    /// to store for commit (the next record to read) when it moved forward.
    pub fn finished(&mut self, pos: &RecordPos) -> Option<i64> {
        let st = self.partitions.get_mut(&(pos.topic.clone(), pos.partition))?;
        if st.generation != pos.generation || !st.in_flight.remove(&pos.offset) {
            return None;
        }
        let commit = st.in_flight.first().copied().unwrap_or(st.next);
        (commit > st.committed).then(|| {
            st.committed = commit;
            commit
        })
    }

    /// Forgets a partition that was revoked; its later completions are ignored.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }

    /// Whether `pos` belongs to the current assignment of its partition:
    /// false once the partition was revoked (even if it was assigned again
    /// since), so a record fetched before is dropped, never claimed.
    pub fn is_current(&self, pos: &RecordPos) -> bool {
        self.partitions.get(&(pos.topic.clone(), pos.partition)).is_some_and(|st| st.generation == pos.generation)
    }

    /// Records in flight across all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_never_passes_an_incomplete_record() {
        let mut t = OffsetTracker::new();
        let a = t.started("t", 0, 10);
        let b = t.started("t", 0, 11);
        let c = t.started("t", 0, 12);
        assert_eq!(t.finished(&c), None, "10 and 11 still running");
        assert_eq!(t.finished(&a), Some(11));
        assert_eq!(t.finished(&b), Some(13));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn completions_from_a_revoked_assignment_are_ignored() {
        let mut t = OffsetTracker::new();
        let old = t.started("t", 1, 5);
        t.revoke("t", 1);
        let new = t.started("t", 1, 5);
        assert!(!t.is_current(&old), "a record of the earlier assignment is not claimed");
        assert!(t.is_current(&new));
        assert_eq!(t.finished(&old), None);
        assert_eq!(t.finished(&new), Some(6));
    }
}
