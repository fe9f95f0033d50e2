//! The update's two paths — host loops (`ppo.host_loops = true`) and libtorch's operations
//! throughout — on the same rollout from the same parameters: the same update to float
//! rounding, and each path the same to the bit when repeated.

use tch::{Device, Kind, Tensor};
use wormnet_sim::{EnvSpec, Space};

use super::*;
use crate::policy::PolicyConfig;

const ENVS: i64 = 4;
const STEPS: usize = 16;

/// A two-observation env spec with `action_space`.
fn spec(action_space: Space, actions: usize) -> EnvSpec {
    EnvSpec {
        name: "paths".into(),
        observation_space: Space::uniform(2, -1.0, 1.0).unwrap(),
        action_space,
        dt: 0.05,
        max_episode_steps: None,
        observation_names: vec!["a".into(), "b".into()],
        action_names: (0..actions).map(|i| format!("u{i}")).collect(),
        clip_actions: false,
        survival_is_success: false,
        image: None,
    }
}

/// A small LTC policy with `outputs` motor neurons for `spec`.
fn policy(spec: &EnvSpec, outputs: usize) -> Policy {
    let config: PolicyConfig = toml::from_str(&format!(
        "[actor]\ncell = \"ltc\"\n\
         wiring = {{ kind = \"auto_ncp\", units = 8, output_size = {outputs}, seed = 5 }}\n"
    ))
    .unwrap();
    Policy::new(spec, &config, Device::Cpu).unwrap()
}

/// A rollout of the policy on random observations and rewards, env 0's episode ending
/// halfway (so the replay resets its state there).
fn rollout(policy: &Policy) -> Rollout {
    rollout_of(policy, ENVS)
}

/// [`rollout`] of `envs` envs.
fn rollout_of(policy: &Policy, envs: i64) -> Rollout {
    let n = envs as usize;
    let mut state = policy.initial_state(envs);
    let mut r = Rollout {
        state0: state.detach(),
        obs: Vec::new(),
        starts: Vec::new(),
        actions: Vec::new(),
        actor_h: Vec::new(),
        logp: Vec::new(),
        values: Vec::new(),
        rewards: Vec::new(),
        terminated: Vec::new(),
        truncated: vec![false; STEPS * n],
        final_values: vec![0.0; STEPS * n],
        last_values: Vec::new(),
        episodes: Vec::new(),
    };
    let mut starts = vec![true; n];
    for t in 0..STEPS {
        let obs = Tensor::randn([envs, 2], (Kind::Float, Device::Cpu));
        let act = policy.act(&obs, &state, false);
        let done: Vec<bool> = (0..n).map(|i| i == 0 && t == STEPS / 2).collect();
        r.obs.push(obs);
        r.starts.push(Tensor::from_slice(&starts));
        r.actions.push(act.action.reshape([envs, -1]));
        r.actor_h.push(act.state.actor.h.detach());
        r.logp.push(act.logp);
        r.values.push(act.value);
        r.rewards
            .extend((0..n).map(|i| ((t * 7 + i * 3) % 5) as f32 * 0.5 - 1.0));
        r.terminated.extend_from_slice(&done);
        state = act.state.reset(&Tensor::from_slice(&done));
        starts = done;
    }
    let last = policy.value(
        &Tensor::randn([envs, 2], (Kind::Float, Device::Cpu)),
        &state,
    );
    r.last_values = Vec::<f32>::try_from(last).unwrap();
    r
}

/// What an update leaves: its statistics, the parameters, and the last minibatch's gradients.
struct Outcome {
    stats: UpdateStats,
    params: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
}

/// One update of `policy` on `rollout` from the parameters `init`, with or without host loops.
fn run(policy: &Policy, init: &[Tensor], rollout: &Rollout, host_loops: bool) -> Outcome {
    run_on(policy, init, rollout, host_loops, &Shards::none())
}

/// [`run`] with each minibatch split over `shards`.
fn run_on(
    policy: &Policy,
    init: &[Tensor],
    rollout: &Rollout,
    host_loops: bool,
    shards: &Shards,
) -> Outcome {
    let params: Vec<Tensor> = policy.parameters().into_iter().map(|(_, t)| t).collect();
    tch::no_grad(|| {
        for (p, v) in params.iter().zip(init) {
            p.shallow_clone().copy_(v);
        }
    });
    wormnet_ncp::kernels::parameters_written();
    let mut adam = Adam::new(&params, 3e-3, 1e-5);
    let cfg = PpoConfig {
        epochs: 3,
        minibatches: 2,
        ent_coef: 0.01,
        host_loops,
        ..PpoConfig::default()
    };
    let cfg = PpoConfig {
        minibatches: if rollout.last_values.len() > ENVS as usize {
            1
        } else {
            cfg.minibatches
        },
        ..cfg
    };
    let stats = update(policy, &params, &mut adam, rollout, &cfg, 9, shards).unwrap();
    let flat = |t: &Tensor| Vec::<f32>::try_from(t.reshape([-1])).unwrap();
    Outcome {
        stats,
        params: params.iter().map(flat).collect(),
        grads: params
            .iter()
            .map(|p| {
                Some(p.grad())
                    .filter(Tensor::defined)
                    .map_or(Vec::new(), |g| flat(&g))
            })
            .collect(),
    }
}

/// The statistics compared, by name.
fn figures(s: &UpdateStats) -> [(&'static str, f64); 8] {
    [
        ("policy_loss", s.policy_loss),
        ("value_loss", s.value_loss),
        ("entropy", s.entropy),
        ("old_approx_kl", s.old_approx_kl),
        ("approx_kl", s.approx_kl),
        ("clipfrac", s.clipfrac),
        ("grad_norm", s.grad_norm),
        ("explained_variance", s.explained_variance),
    ]
}

/// Every pair of tensors within `tol` of the larger's largest element.
fn assert_close(ours: &[Vec<f32>], theirs: &[Vec<f32>], tol: f32, what: &str) {
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let top = b.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * top, "{what} {i}: {x} vs {y}");
        }
    }
}

/// The policies the update is tested on: (name, env spec, motor outputs).
fn cases() -> [(&'static str, EnvSpec, usize); 2] {
    [
        ("categorical", spec(Space::discrete(3).unwrap(), 1), 3),
        (
            "gaussian",
            spec(Space::bounded(vec![-1.0], vec![1.0]).unwrap(), 1),
            1,
        ),
    ]
}

/// A copy of the policy's parameters, to start each update from.
fn snapshot(policy: &Policy) -> Vec<Tensor> {
    policy
        .parameters()
        .iter()
        .map(|(_, t)| t.detach().copy())
        .collect()
}

#[test]
fn host_loops_and_libtorchs_operations_give_the_same_update_to_float_rounding() {
    for (name, spec, outputs) in cases() {
        let policy = policy(&spec, outputs);
        let init = snapshot(&policy);
        let rollout = rollout(&policy);
        let host = run(&policy, &init, &rollout, true);
        let torch = run(&policy, &init, &rollout, false);
        // The losses, the statistics and the norm: within 1e-5 of the value, or of 0.1 (the
        // size of the terms their means add up) where it is near 0.
        for ((what, a), (_, b)) in figures(&host.stats).into_iter().zip(figures(&torch.stats)) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(0.1),
                "{name} {what}: host {a} vs libtorch {b}"
            );
        }
        for s in [&host.stats, &torch.stats] {
            assert!(
                s.first_ratio_deviation < 1e-5,
                "{name}: {}",
                s.first_ratio_deviation
            );
        }
        // Six steps later, the parameters and the last gradients: within 1e-5 and 1e-4 of
        // each tensor's largest element.
        assert_close(
            &host.params,
            &torch.params,
            1e-5,
            &format!("{name} parameter"),
        );
        assert_close(&host.grads, &torch.grads, 1e-4, &format!("{name} gradient"));
        // The switch switches: the paths differ in their last bits...
        let bits = |o: &Outcome| figures(&o.stats).map(|(_, v)| v.to_bits());
        assert_ne!(
            bits(&host),
            bits(&torch),
            "{name}: the host loops did not run"
        );
        // ... and each repeats itself to the bit.
        for host_loops in [true, false] {
            let again = run(&policy, &init, &rollout, host_loops);
            let first = if host_loops { &host } else { &torch };
            assert_eq!(bits(&again), bits(first), "{name} host_loops {host_loops}");
            assert_eq!(again.params, first.params, "{name} host_loops {host_loops}");
        }
    }
}

#[test]
fn sharded_updates_equal_the_unsharded_one_to_float_rounding_and_repeat_to_the_bit() {
    // Each minibatch (2 of the 4 envs) split over 2 threads, each shard on a replica of the
    // policy: the same update as on one thread, up to the order in which the gradients'
    // terms are added; and the same bits every time at that thread count.
    for (name, spec, outputs) in cases() {
        let policy = policy(&spec, outputs);
        let init = snapshot(&policy);
        let rollout = rollout(&policy);
        let one = run(&policy, &init, &rollout, true);
        let two_threads = Shards::spawn(vec![self::policy(&spec, outputs)]).unwrap();
        assert_eq!(two_threads.count(), 2);
        let two = run_on(&policy, &init, &rollout, true, &two_threads);
        assert_eq!(two.stats.shards, 2);
        for ((what, a), (_, b)) in figures(&one.stats).into_iter().zip(figures(&two.stats)) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(0.1),
                "{name} {what}: one thread {a} vs two {b}"
            );
        }
        assert_close(&one.params, &two.params, 1e-5, &format!("{name} parameter"));
        assert_close(&one.grads, &two.grads, 1e-4, &format!("{name} gradient"));
        // Every parameter got a gradient from both shards (none is left at zero).
        assert!(
            two.grads.iter().all(|g| g.iter().any(|x| *x != 0.0)),
            "{name}"
        );
        let again = run_on(&policy, &init, &rollout, true, &two_threads);
        assert_eq!(again.params, two.params, "{name}: two threads, run twice");
        assert_eq!(again.grads, two.grads, "{name}: two threads, run twice");
    }
}

#[test]
fn a_minibatch_of_full_lanes_splits_actor_and_critic_and_keeps_every_bit() {
    // 16 envs in one minibatch on 2 threads: they fill the kernels' lanes, so the minibatch
    // is not split by envs; its actor's half runs on one thread and its MLP critic's on the
    // other. Each parameter gets its gradient from one thread, so the update
    // is the one-thread update to the bit.
    let spec = spec(Space::discrete(2).unwrap(), 1);
    let policy = policy(&spec, 2);
    let init = snapshot(&policy);
    let rollout = rollout_of(&policy, 16);
    let two_threads = Shards::spawn(vec![self::policy(&spec, 2)]).unwrap();
    assert_eq!(two_threads.layout(16, true), (1, true));
    assert_eq!(two_threads.layout(8, true), (1, true));
    assert_eq!(two_threads.layout(16, false), (2, false));
    assert_eq!(two_threads.layout(4, true), (2, false));
    let one = run(&policy, &init, &rollout, true);
    let two = run_on(&policy, &init, &rollout, true, &two_threads);
    assert_eq!(one.params, two.params);
    let bits = |o: &Outcome| figures(&o.stats).map(|(_, v)| v.to_bits());
    assert_eq!(bits(&one), bits(&two));
    // On 4 threads: two shards of 8 envs, each split in halves, on three replicas: the same
    // update to float rounding, and the same bits again.
    let replicas = (0..3).map(|_| self::policy(&spec, 2)).collect();
    let four_threads = Shards::spawn(replicas).unwrap();
    assert_eq!(four_threads.layout(16, true), (2, true));
    let four = run_on(&policy, &init, &rollout, true, &four_threads);
    assert_close(&one.params, &four.params, 1e-5, "four threads: parameter");
    assert_close(&one.grads, &four.grads, 1e-4, "four threads: gradient");
    let again = run_on(&policy, &init, &rollout, true, &four_threads);
    assert_eq!((again.params, again.grads), (four.params, four.grads));
}
