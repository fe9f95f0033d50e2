//! The actor's half of the PPO loss for a categorical policy on the CPU, as host loops over the
//! logits: the log-probabilities of the taken actions, the entropies, the clipped surrogate with
//! normalised advantages, the entropy bonus and the ratio's diagnostics, *and* the loss's
//! gradient with respect to the logits, written out by hand. The update then backpropagates
//! only `Σ logits · g` through the network. These replace ~40 of libtorch's small operations
//! (and their autograd nodes) per minibatch with a few microseconds of arithmetic.
//!
//! The arithmetic is CleanRL's loss as `ppo::update` writes it with tensors, in f64, under the
//! contract of [`super`]: it agrees with the tensor form to float rounding, not to the bit; a
//! test compares values and gradients with autograd's. Where a minibatch's advantages have
//! almost no spread, normalising them magnifies the f32 form's rounding, and the two differ by
//! more.

use tch::{Kind, Tensor};

use super::memory::{host_f32, host_slice};
use super::stats::mean_and_std;

/// The PPO settings the actor's loss uses.
#[derive(Clone, Copy, Debug)]
pub struct LossSettings {
    /// The ratio's clip range: `[1 − clip_coef, 1 + clip_coef]`.
    pub clip_coef: f64,
    /// The entropy bonus's weight.
    pub ent_coef: f64,
    /// Whether advantages are normalised per minibatch (mean 0, unbiased std 1).
    pub norm_adv: bool,
}

/// The actor's loss and its diagnostics for one minibatch, with the gradient of `actor_loss`
/// with respect to the logits.
#[derive(Debug)]
pub struct CategoricalLoss {
    /// `pg_loss − ent_coef · entropy`.
    pub actor_loss: f64,
    /// The clipped surrogate (CleanRL's `pg_loss`).
    pub pg_loss: f64,
    /// The mean entropy.
    pub entropy: f64,
    /// The mean of `−log ratio`.
    pub old_approx_kl: f64,
    /// The mean of `(ratio − 1) − log ratio`.
    pub approx_kl: f64,
    /// The share of samples with `|ratio − 1| > clip_coef`.
    pub clipfrac: f64,
    /// `max |ratio − 1|`.
    pub max_ratio_deviation: f64,
    /// `∂ actor_loss / ∂ logits`, shaped like the logits.
    pub grad: Tensor,
}

/// The loss of the logits `(B, T, n)` for the taken actions (indices as floats, `B·T` of them),
/// the rollout's log-probabilities and the advantages (`(B, T)` each). `None` where the host form
/// does not apply (off the CPU, not contiguous f32, shapes that do not match, an index out of
/// range): the caller then takes the tensor form. A gradient beyond f32's range makes
/// `actor_loss` infinite, so the update stops as for a diverged loss.
pub fn categorical_loss(
    logits: &Tensor,
    actions: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    s: LossSettings,
) -> Option<CategoricalLoss> {
    let inputs = Inputs::read(logits, actions, old_logp, advantages)?;
    let (len, n_act) = (inputs.old.len(), inputs.n_act);
    let count = len as f64;
    // Advantages: normalised as `(A − mean) / (std + 1e-8)` with torch's unbiased std.
    let (shift, scale) = if s.norm_adv {
        let (mean, std) = mean_and_std(inputs.adv);
        (mean, std + 1e-8)
    } else {
        (0.0, 1.0)
    };
    let mut out = CategoricalLoss {
        actor_loss: 0.0,
        pg_loss: 0.0,
        entropy: 0.0,
        old_approx_kl: 0.0,
        approx_kl: 0.0,
        clipfrac: 0.0,
        max_ratio_deviation: 0.0,
        grad: Tensor::new(),
    };
    let mut grad = vec![0f32; len * n_act];
    let mut dist = Distribution::new(n_act);
    for (i, g) in grad.chunks_exact_mut(n_act).enumerate() {
        let taken = inputs.index[i];
        dist.set(&inputs.z[i * n_act..(i + 1) * n_act]);
        let logratio = dist.logp[taken] - f64::from(inputs.old[i]);
        let ratio = logratio.exp();
        out.entropy += dist.entropy;
        out.old_approx_kl -= logratio;
        out.approx_kl += (ratio - 1.0) - logratio;
        if (ratio - 1.0).abs() > s.clip_coef {
            out.clipfrac += 1.0;
        }
        out.max_ratio_deviation = out.max_ratio_deviation.max((ratio - 1.0).abs());
        let advantage = (f64::from(inputs.adv[i]) - shift) / scale;
        let (pg, g_ratio) = clipped_surrogate(ratio, advantage, s.clip_coef);
        out.pg_loss += pg;
        // Through r = exp(logp − old) and log-softmax.
        dist.gradient(taken, g_ratio * ratio / count, s.ent_coef / count, g);
    }
    for v in [
        &mut out.pg_loss,
        &mut out.entropy,
        &mut out.old_approx_kl,
        &mut out.approx_kl,
        &mut out.clipfrac,
    ] {
        *v /= count;
    }
    out.actor_loss = out.pg_loss - s.ent_coef * out.entropy;
    if grad.iter().any(|g| !g.is_finite()) {
        out.actor_loss = f64::INFINITY;
    }
    out.grad = Tensor::from_slice(&grad).reshape(logits.size());
    Some(out)
}

/// The loss's inputs as host slices, with the taken actions as indices.
struct Inputs<'a> {
    /// The logits, `n_act` per sample.
    z: &'a [f32],
    /// The rollout's log-probabilities of the taken actions.
    old: &'a [f32],
    /// The advantages.
    adv: &'a [f32],
    /// The taken actions.
    index: Vec<usize>,
    /// Actions per sample.
    n_act: usize,
}

impl<'a> Inputs<'a> {
    /// The slices, or `None` where the shapes do not match, a tensor is not one the host
    /// loops can read, or an action is not an index below `n_act`.
    fn read(
        logits: &'a Tensor,
        actions: &'a Tensor,
        old_logp: &'a Tensor,
        advantages: &'a Tensor,
    ) -> Option<Self> {
        let size = logits.size();
        let n_act = usize::try_from(*size.last()?).ok()?;
        let len = old_logp.numel();
        let steps = size.get(..size.len().checked_sub(1)?)?;
        if n_act == 0
            || old_logp.size() != steps
            || advantages.size() != steps
            || actions.size() != [steps, &[1]].concat()
            || !host_f32(logits, len * n_act)
            || !host_f32(actions, len)
            || !host_f32(old_logp, len)
            || !host_f32(advantages, len)
        {
            return None;
        }
        // SAFETY: all four passed `host_f32`, and nothing writes to them while these slices
        // live.
        let (z, act, old, adv) = unsafe {
            (
                host_slice(logits),
                host_slice(actions),
                host_slice(old_logp),
                host_slice(advantages),
            )
        };
        let index = act
            .iter()
            .map(|&a| (a >= 0.0 && (a as usize) < n_act && a.fract() == 0.0).then_some(a as usize))
            .collect::<Option<_>>()?;
        Some(Inputs {
            z,
            old,
            adv,
            index,
            n_act,
        })
    }
}

/// One sample's categorical distribution, in f64: log-probabilities, probabilities, entropy.
struct Distribution {
    logp: Vec<f64>,
    probs: Vec<f64>,
    entropy: f64,
}

impl Distribution {
    /// Room for `n_act` actions.
    fn new(n_act: usize) -> Self {
        Distribution {
            logp: vec![0.0; n_act],
            probs: vec![0.0; n_act],
            entropy: 0.0,
        }
    }

    /// The distribution of the logits `z`: log-softmax, shifted by the largest logit.
    fn set(&mut self, z: &[f32]) {
        let top = z
            .iter()
            .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
        let lse = top
            + z.iter()
                .map(|&x| (f64::from(x) - top).exp())
                .sum::<f64>()
                .ln();
        for ((lp, p), &x) in self.logp.iter_mut().zip(&mut self.probs).zip(z) {
            *lp = f64::from(x) - lse;
            *p = lp.exp();
        }
        self.entropy = -self
            .probs
            .iter()
            .zip(&self.logp)
            .map(|(p, lp)| p * lp)
            .sum::<f64>();
    }

    /// Writes into `g` the gradient in the logits of `g_logp · log p(taken) − g_entropy · H`
    /// (the entropy bonus's derivative is `−ent_coef · ∂H/∂z_j = ent_coef · p_j · (log p_j + H)`).
    fn gradient(&self, taken: usize, g_logp: f64, g_entropy: f64, g: &mut [f32]) {
        for (j, ((g, &lp), &p)) in g.iter_mut().zip(&self.logp).zip(&self.probs).enumerate() {
            let hit = if j == taken { 1.0 } else { 0.0 };
            *g = (g_logp * (hit - p) + g_entropy * p * (lp + self.entropy)) as f32;
        }
    }
}

/// The clipped surrogate `max(−A·r, −A·clip(r))` of one sample and its derivative in `r`.
/// Ties are split as autograd splits them: where the clipped and unclipped terms are equal,
/// each gets half of the gradient.
fn clipped_surrogate(ratio: f64, advantage: f64, clip_coef: f64) -> (f64, f64) {
    let (low, high) = (1.0 - clip_coef, 1.0 + clip_coef);
    let unclipped = -advantage * ratio;
    let clipped = -advantage * ratio.clamp(low, high);
    let inside = if (low..=high).contains(&ratio) {
        1.0
    } else {
        0.0
    };
    if unclipped > clipped {
        (unclipped, -advantage)
    } else if unclipped < clipped {
        (clipped, -advantage * inside)
    } else {
        (unclipped, 0.5 * -advantage + 0.5 * -advantage * inside)
    }
}

/// The surrogate whose backward gives `logits` exactly the gradient `grad`: `Σ logits · g`.
pub fn surrogate(logits: &Tensor, grad: &Tensor) -> Tensor {
    (logits * grad).sum(Kind::Float)
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    use super::*;
    use crate::policy::Evaluation;

    /// The settings of most tests: CleanRL's clip range, no entropy bonus.
    const PLAIN: LossSettings = LossSettings {
        clip_coef: 0.2,
        ent_coef: 0.0,
        norm_adv: true,
    };

    /// The tensor form of the loss, as the replay and `update` write it.
    fn tensor_loss(
        logits: &Tensor,
        actions: &Tensor,
        old_logp: &Tensor,
        adv: &Tensor,
        s: LossSettings,
    ) -> [Tensor; 3] {
        let (logp, entropy) = Evaluation::Logits {
            logits: logits.shallow_clone(),
            actions: actions.shallow_clone(),
        }
        .tensors();
        let ratio = (&logp - old_logp).exp();
        let adv = if s.norm_adv {
            (adv - adv.mean(Kind::Float)) / (adv.std(true) + 1e-8)
        } else {
            adv.shallow_clone()
        };
        let pg1 = -&adv * &ratio;
        let pg2 = -&adv * ratio.clamp(1.0 - s.clip_coef, 1.0 + s.clip_coef);
        let pg_loss = pg1.max_other(&pg2).mean(Kind::Float);
        let entropy = entropy.mean(Kind::Float);
        let actor_loss = &pg_loss - &entropy * s.ent_coef;
        [actor_loss, pg_loss, entropy]
    }

    fn close(a: f64, b: f64, what: &str) {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{what}: host {a} vs libtorch {b}"
        );
    }

    #[test]
    fn the_host_loss_and_its_gradient_match_autograd() {
        tch::manual_seed(3);
        for (b, t, n, ent_coef, norm_adv) in [
            (8, 32, 2, 0.0, true),
            (3, 5, 4, 0.01, true),
            (2, 7, 3, 0.05, false),
        ] {
            let s = LossSettings {
                clip_coef: 0.2,
                ent_coef,
                norm_adv,
            };
            let opts = (Kind::Float, Device::Cpu);
            let logits = (Tensor::randn([b, t, n], opts) * 2.0).set_requires_grad(true);
            let actions = Tensor::randint(n, [b, t, 1], opts);
            // The rollout's log-probabilities: the current ones moved by up to ±0.4, so that
            // some ratios fall outside the clip range on each side.
            let current = tch::no_grad(|| {
                logits
                    .log_softmax(-1, Kind::Float)
                    .gather(2, &actions.to_kind(Kind::Int64), false)
                    .squeeze_dim(2)
            });
            let old_logp = &current + (Tensor::rand([b, t], opts) - 0.5) * 0.8;
            let adv = Tensor::randn([b, t], opts) + 0.3;
            let host = categorical_loss(&logits.detach(), &actions, &old_logp, &adv, s)
                .expect("the host form applies");
            let [actor_loss, pg_loss, entropy] = tensor_loss(&logits, &actions, &old_logp, &adv, s);
            close(host.actor_loss, actor_loss.double_value(&[]), "actor loss");
            close(host.pg_loss, pg_loss.double_value(&[]), "pg loss");
            close(host.entropy, entropy.double_value(&[]), "entropy");
            assert!(
                host.clipfrac > 0.0 && host.clipfrac < 1.0,
                "{}",
                host.clipfrac
            );
            actor_loss.backward();
            let theirs = Vec::<f32>::try_from(logits.grad().reshape([-1])).unwrap();
            let ours = Vec::<f32>::try_from(host.grad.reshape([-1])).unwrap();
            let top = theirs.iter().fold(0f32, |m, g| m.max(g.abs()));
            for (k, (a, c)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - c).abs() <= 1e-5 * top,
                    "({b}, {t}, {n}) gradient {k}: host {a} vs autograd {c}"
                );
            }
            // The surrogate hands exactly that gradient to the logits.
            let leaf = logits.detach().set_requires_grad(true);
            surrogate(&leaf, &host.grad).backward();
            assert!(leaf.grad().equal(&host.grad));
        }
    }

    #[test]
    fn the_tensor_form_is_left_where_the_host_form_does_not_apply() {
        let (opts, s) = ((Kind::Float, Device::Cpu), PLAIN);
        let logits = Tensor::zeros([2, 3, 2], opts);
        let (old, adv) = (Tensor::zeros([2, 3], opts), Tensor::ones([2, 3], opts));
        let ok = Tensor::zeros([2, 3, 1], opts);
        assert!(categorical_loss(&logits, &ok, &old, &adv, s).is_some());
        let out_of_range = Tensor::full([2, 3, 1], 2.0, opts);
        assert!(categorical_loss(&logits, &out_of_range, &old, &adv, s).is_none());
        let doubles = logits.to_kind(Kind::Double);
        assert!(categorical_loss(&doubles, &ok, &old, &adv, s).is_none());
        let strided = Tensor::zeros([2, 2, 3], opts).transpose(1, 2);
        assert!(categorical_loss(&strided, &ok, &old, &adv, s).is_none());
        let swapped = Tensor::zeros([3, 2], opts);
        assert!(categorical_loss(&logits, &ok, &swapped, &adv, s).is_none());
        assert!(categorical_loss(&logits, &ok, &old, &swapped, s).is_none());
    }

    #[test]
    fn a_gradient_beyond_f32s_range_makes_the_loss_infinite() {
        let (opts, s) = ((Kind::Float, Device::Cpu), PLAIN);
        let logits = Tensor::zeros([1, 4, 2], opts);
        let actions = Tensor::zeros([1, 4, 1], opts);
        let adv = Tensor::from_slice(&[1f32, -1.0, 2.0, -2.0]).reshape([1, 4]);
        // Ratios of e^200: finite in f64, their gradients not in f32.
        let old = Tensor::full([1, 4], -200.0, opts);
        let loss = categorical_loss(&logits, &actions, &old, &adv, s).expect("applies");
        assert_eq!(loss.actor_loss, f64::INFINITY);
        let sane = Tensor::full([1, 4], -0.5, opts);
        let loss = categorical_loss(&logits, &actions, &sane, &adv, s).expect("applies");
        assert!(loss.actor_loss.is_finite());
    }
}
