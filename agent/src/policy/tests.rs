//! Unit tests of the policy: action rescaling and named build errors.

use super::*;

fn spec(low: f32, high: f32) -> EnvSpec {
    EnvSpec {
        name: "box".into(),
        observation_space: Space::uniform(2, -1.0, 1.0).unwrap(),
        action_space: Space::bounded(vec![low, f32::NEG_INFINITY], vec![high, f32::INFINITY])
            .unwrap(),
        dt: 0.05,
        max_episode_steps: None,
        observation_names: vec!["a".into(), "b".into()],
        action_names: vec!["torque".into(), "free".into()],
        clip_actions: false,
        survival_is_success: false,
        image: None,
    }
}

fn policy(rescale: bool, low: f32, high: f32) -> Policy {
    let config: PolicyConfig = toml::from_str(&format!(
        "rescale_actions = {rescale}\n[actor]\ncell = \"ltc\"\n\
         wiring = {{ kind = \"auto_ncp\", units = 6, output_size = 2 }}\n"
    ))
    .unwrap();
    Policy::new(&spec(low, high), &config, Device::Cpu).unwrap()
}

#[test]
fn bounded_actions_are_rescaled_from_unit_range_and_clipped() {
    let p = policy(true, -2.0, 4.0);
    let raw = Tensor::from_slice(&[-1.0f32, 7.0, 0.0, -7.0, 3.0, 0.5]).reshape([3, 2]);
    let mut out = vec![0.0; 6];
    p.env_actions(&raw, &mut out);
    // Bounded component: [-1, 1] -> [-2, 4], clipped first; unbounded: unchanged.
    assert_eq!(out, vec![-2.0, 7.0, 1.0, -7.0, 4.0, 0.5]);
    let p = policy(false, -2.0, 4.0);
    p.env_actions(&raw, &mut out);
    assert_eq!(out, vec![-1.0, 7.0, 0.0, -7.0, 3.0, 0.5]);
}

#[test]
fn wrong_motor_count_names_the_field() {
    let config: PolicyConfig = toml::from_str(
        "[actor]\ncell = \"ltc\"\nwiring = { kind = \"auto_ncp\", units = 6, output_size = 3 }\n",
    )
    .unwrap();
    let err = Policy::new(&spec(-1.0, 1.0), &config, Device::Cpu)
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        text.contains("policy.actor")
            && text.contains("3 outputs")
            && text.contains("set the wiring's output size to 2"),
        "{text}"
    );
    // A baseline's outputs are its projection.
    let config: PolicyConfig =
        toml::from_str("[actor]\ncell = \"lstm\"\nunits = 8\nproj_size = 3\n").unwrap();
    let err = Policy::new(&spec(-1.0, 1.0), &config, Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("set proj_size to 2"), "{err}");
}

/// An env observing a 2×8×12 image and two flat features, with one bounded action.
fn camera_spec(image: bool) -> EnvSpec {
    let dim = 2 * 8 * 12 + 2;
    EnvSpec {
        name: "camera".into(),
        observation_space: Space::uniform(dim, 0.0, 1.0).unwrap(),
        action_space: Space::bounded(vec![-1.0], vec![1.0]).unwrap(),
        dt: 0.05,
        max_episode_steps: None,
        observation_names: (0..dim).map(|i| format!("o{i}")).collect(),
        action_names: vec!["steering".into()],
        clip_actions: false,
        survival_is_success: false,
        image: image.then_some(wormnet_sim::ImageShape {
            channels: 2,
            height: 8,
            width: 12,
        }),
    }
}

fn camera_policy(cell: &str) -> Policy {
    tch::manual_seed(5);
    let config: PolicyConfig = toml::from_str(&format!(
        "[encoder]\nkind = \"conv\"\nchannels = [4, 4]\nkernels = [3, 3]\nstrides = [2, 1]\n\
         features = 6\n[actor]\n{cell}\n"
    ))
    .unwrap();
    Policy::new(&camera_spec(true), &config, Device::Cpu).unwrap()
}

/// Backpropagates the replay loss of a fixed batch, `Σ logp + Σ value²`, and returns it: what
/// the gradient checks differentiate. Each half of the replay backpropagates its own term.
fn replay_backward(p: &Policy, obs: &Tensor) -> f64 {
    let (b, t) = (obs.size()[0], obs.size()[1]);
    let actions = Tensor::full([b, t, 1], 0.3, (Kind::Float, Device::Cpu));
    let starts = Tensor::zeros([b, t], (Kind::Float, Device::Cpu));
    let state0 = p.initial_state(b);
    let actor_h = Tensor::zeros(
        [b, t, p.actor.state_size() as i64],
        (Kind::Float, Device::Cpu),
    );
    let batch = ReplayBatch {
        obs,
        actions: &actions,
        starts: &starts,
        state0: &state0,
        actor_h: &actor_h,
    };
    let replayed = p.replay(
        &batch,
        |value, tape| {
            let loss = value.pow_tensor_scalar(2).sum(value.kind());
            tape.backward(&loss);
            loss.double_value(&[])
        },
        |ev, tape| {
            let logp = ev.tensors().0;
            let loss = logp.sum(logp.kind());
            tape.backward(&loss);
            loss.double_value(&[])
        },
    );
    replayed.actor + replayed.critic
}

/// The gradient of [`replay_backward`]'s loss with respect to the first conv layer's weights.
fn encoder_gradient(p: &Policy, obs: &Tensor) -> Tensor {
    for (_, t) in p.parameters() {
        let mut grad = t.grad();
        if grad.defined() {
            let _ = grad.zero_();
        }
    }
    let _ = replay_backward(p, obs);
    conv0_weight(p).grad().copy()
}

fn conv0_weight(p: &Policy) -> Tensor {
    p.parameters()
        .into_iter()
        .find(|(name, _)| name == "encoder.conv0.weight")
        .expect("encoder weights are trained")
        .1
}

#[test]
fn the_encoder_learns_through_every_cell_path() {
    // The LTC runs the hand-written f32 kernel (its backward after autograd's), the dense CfC
    // runs autograd. Either way the encoder's weights get the loss's exact gradient: the same
    // as a float64 copy of the policy, which runs libtorch's generic path, gives at the same
    // point (measured over 40 seeds: within 1.2e-6 of the largest entry). That copy's gradient is
    // in turn checked against central differences along a random direction; in f64 a step of
    // 1e-6 rarely meets a ReLU kink (40 seeds: within 7.5e-4, mostly ~1e-8).
    for cell in [
        "cell = \"ltc\"\nwiring = { kind = \"auto_ncp\", units = 5, output_size = 1 }",
        "cell = \"cfc\"\nunits = 5\nproj_size = 1",
    ] {
        let p = camera_policy(cell);
        let mut p64 = camera_policy(cell);
        p64.vs.copy(&p.vs).unwrap();
        p64.vs.double();
        tch::manual_seed(9);
        let obs = Tensor::rand([3, 4, 2 * 8 * 12 + 2], (Kind::Float, Device::Cpu));
        let obs64 = obs.to_kind(Kind::Double);

        let kernel = encoder_gradient(&p, &obs).to_kind(Kind::Double);
        let reference = encoder_gradient(&p64, &obs64);
        let scale = reference.abs().max().double_value(&[]);
        let error = (&kernel - &reference).abs().max().double_value(&[]);
        assert!(scale > 1e-4, "{cell}: no gradient reached the encoder");
        assert!(
            error <= 1e-3 * scale,
            "{cell}: f32 path {kernel:?} vs f64 path {reference:?} (max error {error}, scale {scale})"
        );

        let weight = conv0_weight(&p64);
        let direction = Tensor::randn(weight.size(), (Kind::Double, Device::Cpu));
        let analytic = (&reference * &direction)
            .sum(Kind::Double)
            .double_value(&[]);
        let eps = 1e-6;
        let at = |delta: f64| {
            tch::no_grad(|| {
                let _ = weight.shallow_clone().g_add_(&(&direction * delta));
            });
            let value = replay_backward(&p64, &obs64);
            tch::no_grad(|| {
                let _ = weight.shallow_clone().g_sub_(&(&direction * delta));
            });
            value
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        assert!(
            (analytic - numeric).abs() <= 1e-2 * numeric.abs().max(1e-3),
            "{cell}: analytic {analytic} vs numeric {numeric}"
        );
    }
}

#[test]
fn an_encoder_needs_an_image_and_kernels_that_fit() {
    let config: PolicyConfig = toml::from_str(
        "[encoder]\nkind = \"conv\"\n[actor]\ncell = \"mlp\"\nunits = 4\nproj_size = 1\n",
    )
    .unwrap();
    let err = Policy::new(&camera_spec(false), &config, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("policy.encoder") && err.contains("observes no image"),
        "{err}"
    );
    let config: PolicyConfig = toml::from_str(
        "[encoder]\nkind = \"conv\"\nkernels = [3, 9, 9]\n[actor]\ncell = \"mlp\"\nunits = 4\nproj_size = 1\n",
    )
    .unwrap();
    let err = Policy::new(&camera_spec(true), &config, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("convolution 1") && err.contains("does not fit"),
        "{err}"
    );
}

/// Every parameter's gradient, by name (zeros where none arrived).
fn gradients(p: &Policy) -> Vec<(String, Vec<f32>)> {
    p.parameters()
        .into_iter()
        .map(|(name, t)| {
            let g = t.grad();
            let g = if g.defined() {
                g.copy()
            } else {
                t.zeros_like()
            };
            (name, Vec::<f32>::try_from(g.reshape([-1])).unwrap())
        })
        .collect()
}

/// A replay's inputs, owned: `obs` given, the actions random, an episode start in the middle
/// of sample 1, the recorded actor states random.
struct Inputs {
    obs: Tensor,
    actions: Tensor,
    starts: Tensor,
    state0: PolicyState,
    actor_h: Tensor,
}

impl Inputs {
    fn new(p: &Policy, obs: Tensor, action_dim: i64) -> Inputs {
        let (b, t) = (obs.size()[0], obs.size()[1]);
        let cpu = (Kind::Float, Device::Cpu);
        let starts = Tensor::zeros([b, t], cpu);
        let _ = starts.get(b.min(2) - 1).get(t / 2).fill_(1.0);
        Inputs {
            actions: Tensor::randn([b, t, action_dim], cpu),
            starts,
            state0: p.initial_state(b),
            actor_h: Tensor::randn([b, t, p.actor.state_size() as i64], cpu),
            obs,
        }
    }

    fn batch(&self) -> ReplayBatch<'_> {
        ReplayBatch {
            obs: &self.obs,
            actions: &self.actions,
            starts: &self.starts,
            state0: &self.state0,
            actor_h: &self.actor_h,
        }
    }
}

/// Replays `inputs` twice, each half backpropagating its own loss, then both losses summed and
/// backpropagated once; asserts every parameter's gradient is the same to the bit (`to_bits`:
/// −0 ≠ +0). Returns the gradients.
fn assert_two_passes_equal_one(
    p: &Policy,
    inputs: &Inputs,
    critic_loss: fn(&Tensor) -> Tensor,
    actor_loss: fn(&Evaluation) -> Tensor,
) -> Vec<(String, Vec<f32>)> {
    let batch = inputs.batch();
    p.replay(
        &batch,
        move |v, tape| tape.backward(&critic_loss(&v)),
        |ev, tape| tape.backward(&actor_loss(&ev)),
    );
    let two_passes = gradients(p);
    for (_, t) in p.parameters() {
        let _ = t.grad().zero_();
    }
    let one = p.replay(
        &batch,
        move |v, _| critic_loss(&v),
        |ev, tape| (actor_loss(&ev), tape),
    );
    let (loss, tape) = one.actor;
    tape.backward(&(loss + one.critic));
    let bits = |g: &[f32]| g.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    for ((name, a), (_, b)) in two_passes.iter().zip(&gradients(p)) {
        assert_eq!(
            bits(a),
            bits(b),
            "{name}: two backward passes differ from one"
        );
    }
    two_passes
}

#[test]
fn the_two_halves_give_the_gradients_of_one_backward_pass() {
    // Each half backpropagates its own loss. The parameters must get what one backward pass
    // of the summed loss gives, to the bit: PPO's update relies on it for exact runs.
    let p = policy(true, -2.0, 4.0);
    let inputs = Inputs::new(&p, Tensor::randn([3, 7, 2], (Kind::Float, Device::Cpu)), 2);
    let grads = assert_two_passes_equal_one(
        &p,
        &inputs,
        |v| (v - 0.7).pow_tensor_scalar(2).mean(Kind::Float) * 0.25,
        |ev| {
            let (logp, entropy) = ev.tensors();
            -logp.mean(Kind::Float) - entropy.mean(Kind::Float) * 0.01
        },
    );
    for prefix in ["actor.", "critic.", "log_std"] {
        let reached = grads
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .any(|(_, g)| g.iter().any(|x| *x != 0.0));
        assert!(reached, "no gradient reached the {prefix} parameters");
    }
}

#[test]
fn with_an_encoder_the_two_halves_give_the_gradients_of_one_backward_pass() {
    // The encoder's features feed both halves: its gradient gets the critic's term (autograd)
    // and the actor's (the kernel's input gradient), in the same order as in one pass.
    let p = camera_policy(
        "cell = \"ltc\"\nwiring = { kind = \"auto_ncp\", units = 5, output_size = 1 }",
    );
    let obs = Tensor::rand([2, 4, 2 * 8 * 12 + 2], (Kind::Float, Device::Cpu));
    let inputs = Inputs::new(&p, obs, 1);
    let grads = assert_two_passes_equal_one(
        &p,
        &inputs,
        |v| v.pow_tensor_scalar(2).mean(Kind::Float),
        |ev| -ev.tensors().0.mean(Kind::Float),
    );
    let encoder = grads.iter().find(|(n, _)| n == "encoder.conv0.weight");
    assert!(encoder.is_some_and(|(_, g)| g.iter().any(|x| *x != 0.0)));
}
