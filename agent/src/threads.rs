//! How a run shares the machine's cores: one number, `run.threads` (default: the cores this
//! process may use, cgroup quota and CPU affinity included), split into env workers and
//! update shards so that no phase of a run has more busy threads than that. The rollout runs
//! the policy on the trainer's thread while the env workers wait, then the workers step while
//! it waits; the update runs one shard of each minibatch per thread, the trainer's thread
//! being the first. libtorch's intra-op pool is held at one thread on every thread: an NCP's
//! tensors are far too small for it to pay, and its idle threads would take the cores the
//! shards use.

use std::fmt;

/// Logical cores this process may use: `std::thread::available_parallelism`, which on Linux
/// reads the cgroup CPU quota and the affinity mask (what `taskset` and containers set).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many threads of each kind a run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadBudget {
    /// The run's threads: `run.threads` capped at the available cores.
    pub threads: usize,
    /// What was asked for (`run.threads`, `--threads`), if anything.
    pub requested: Option<usize>,
    /// Cores available to the process when the budget was made.
    pub cores: usize,
    /// Threads stepping the envs (the trainer's thread waits while they step).
    pub env_workers: usize,
    /// Threads a PPO minibatch is split over (the trainer's thread runs the first shard).
    pub update_shards: usize,
    /// libtorch's intra-op threads on each of them.
    pub torch_threads: usize,
    /// Why the budget differs from what was asked, one sentence each (printed with the split).
    pub notes: Vec<String>,
}

impl ThreadBudget {
    /// The budget of a run asking for `requested` threads (None: all `cores`) for `num_envs`
    /// envs whose minibatches hold `minibatch_envs` envs each; `workers` is `env.workers`
    /// where a config pins it (capped at the budget).
    pub fn plan(
        requested: Option<usize>,
        cores: usize,
        num_envs: usize,
        minibatch_envs: usize,
        workers: Option<usize>,
    ) -> Self {
        let cores = cores.max(1);
        let mut notes = Vec::new();
        let threads = match requested {
            Some(t) if t > cores => {
                notes.push(format!(
                    "{t} threads asked for, but this process may use {cores} cores: using {cores}"
                ));
                cores
            }
            Some(t) => t.max(1),
            None => cores,
        };
        let mut env_workers = threads.min(num_envs.max(1));
        if let Some(w) = workers {
            if w > env_workers {
                notes.push(format!(
                    "env.workers = {w} is more than the run's {threads} threads allow for \
                     {num_envs} envs: using {env_workers}"
                ));
            } else {
                env_workers = w.max(1);
            }
        }
        ThreadBudget {
            threads,
            requested,
            cores,
            env_workers,
            update_shards: threads.min(minibatch_envs.max(1)),
            torch_threads: 1,
            notes,
        }
    }

    /// The most threads busy at once: the larger of the rollout's and the update's.
    pub fn peak_busy(&self) -> usize {
        self.env_workers.max(self.update_shards)
    }
}

impl fmt::Display for ThreadBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} thread{} ({} core{} available): {} env worker{}, {} update shard{}, {} libtorch \
             thread each",
            self.threads,
            plural(self.threads),
            self.cores,
            plural(self.cores),
            self.env_workers,
            plural(self.env_workers),
            self.update_shards,
            plural(self.update_shards),
            self.torch_threads,
        )?;
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever is asked, no phase of a run has more busy threads than `run.threads`, and
        /// `run.threads` never exceeds the cores.
        #[test]
        fn the_budget_never_exceeds_the_threads_or_the_cores(
            requested in proptest::option::of(1usize..300),
            cores in 1usize..128,
            num_envs in 1usize..1000,
            minibatch_envs in 1usize..1000,
            workers in proptest::option::of(1usize..300),
        ) {
            let b = ThreadBudget::plan(requested, cores, num_envs, minibatch_envs, workers);
            prop_assert!(b.threads <= cores);
            prop_assert!(b.threads >= 1);
            prop_assert!(b.peak_busy() <= b.threads);
            prop_assert!(b.env_workers >= 1 && b.env_workers <= num_envs);
            prop_assert!(b.update_shards >= 1 && b.update_shards <= minibatch_envs);
            prop_assert_eq!(b.torch_threads, 1);
            if let Some(t) = requested {
                prop_assert_eq!(b.threads, t.min(cores));
                prop_assert_eq!(!b.notes.is_empty(), t > cores || workers.is_some_and(|w| w > t.min(cores).min(num_envs)));
            }
        }
    }

    #[test]
    fn asking_for_more_than_the_cores_caps_and_says_so() {
        let b = ThreadBudget::plan(Some(16), 2, 16, 16, None);
        assert_eq!((b.threads, b.env_workers, b.update_shards), (2, 2, 2));
        let line = b.to_string();
        assert!(
            line.contains("16 threads asked for") && line.contains("using 2"),
            "{line}"
        );
        let b = ThreadBudget::plan(None, 4, 16, 4, Some(8));
        assert_eq!((b.threads, b.env_workers, b.update_shards), (4, 4, 4));
        assert!(b.to_string().contains("env.workers = 8"), "{b}");
        let b = ThreadBudget::plan(Some(2), 8, 16, 16, Some(1));
        assert_eq!((b.threads, b.env_workers, b.update_shards), (2, 1, 2));
        assert!(b.notes.is_empty());
    }
}
