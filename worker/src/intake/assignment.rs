//! Which partitions a worker owns: rendezvous (highest-random-weight) hashing over the live
//! workers. Every worker computes the same answer from the same view, partitions spread evenly,
//! and when a worker joins or leaves only the partitions it gains or loses change owner.

use shared::topology::fnv1a;

/// The owner of `partition` among `workers` (sorted ids): the one with the highest weight.
pub fn owner(partition: u16, workers: &[String]) -> Option<&str> {
    workers
        .iter()
        .max_by_key(|worker| (weight(worker, partition), worker.as_str()))
        .map(String::as_str)
}

/// Whether `me` owns each of the `partitions` partitions, given the live `workers`.
pub fn owned(me: &str, workers: &[String], partitions: u16) -> Vec<bool> {
    (0..partitions)
        .map(|partition| owner(partition, workers) == Some(me))
        .collect()
}

/// A well-mixed 64-bit weight of (worker, partition): FNV-1a over both, then a finaliser
/// (SplitMix64's), so that similar ids do not give similar weights.
fn weight(worker: &str, partition: u16) -> u64 {
    let mut hash = fnv1a(worker.bytes().chain(partition.to_le_bytes()));
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(n: usize) -> Vec<String> {
        let mut ids: Vec<String> = (0..n)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn every_partition_has_exactly_one_owner() {
        let all = workers(5);
        for partition in 0..64u16 {
            let owners = all
                .iter()
                .filter(|w| owned(w, &all, 64)[usize::from(partition)])
                .count();
            assert_eq!(owners, 1);
        }
    }

    #[test]
    fn partitions_spread_evenly_over_the_workers() {
        let all = workers(4);
        for worker in &all {
            let count = owned(worker, &all, 256).iter().filter(|o| **o).count();
            assert!((40..=90).contains(&count), "{count} of 256 for one of 4");
        }
    }

    #[test]
    fn a_joining_worker_takes_partitions_only_from_others_never_moves_the_rest() {
        let mut all = workers(3);
        let before: Vec<Option<String>> = (0..128)
            .map(|p| owner(p, &all).map(str::to_string))
            .collect();
        let newcomer = uuid::Uuid::new_v4().simple().to_string();
        all.push(newcomer.clone());
        all.sort_unstable();
        for partition in 0..128u16 {
            let now = owner(partition, &all).map(str::to_string);
            if now.as_deref() != Some(newcomer.as_str()) {
                assert_eq!(
                    now,
                    before[usize::from(partition)],
                    "partition {partition} moved"
                );
            }
        }
    }

    #[test]
    fn no_workers_no_owner() {
        assert_eq!(owner(1, &[]), None);
    }
}
