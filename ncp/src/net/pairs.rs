//! Sensor and motor neuron pairs, as in the worm-level-control experiments: an input component
//! drives a pair of sensory neurons (its positive part one, its negative part the other, each
//! scaled by a range), and an output is the difference of two motor neurons (FWD − REV). The
//! network applies both around its cell, so every caller (PPO, eval, record) uses them unchanged.

use tch::Tensor;

use crate::config::{MotorPair, NcpConfig, NcpError, SensorPair};
use crate::wiring::Wiring;

/// The pairs resolved to input indices and neuron ids.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pairs {
    /// `(input, 1/range)` per sensor pair; its features are `2k` (positive), `2k+1`.
    sensors: Vec<(i64, f64)>,
    /// The sensory neuron each pair feature feeds, by feature.
    targets: Vec<usize>,
    /// `(positive, negative)` output (motor) indices per output.
    motors: Vec<(i64, i64)>,
}

impl Pairs {
    /// Resolves `sensors` and `motors` on `wiring` (unbuilt) for `input_size` inputs; errors
    /// name the pair and the neuron.
    pub(crate) fn resolve(
        sensors: &[SensorPair],
        motors: &[MotorPair],
        wiring: Option<&Wiring>,
        input_size: usize,
    ) -> Result<Option<Pairs>, NcpError> {
        if sensors.is_empty() && motors.is_empty() {
            return Ok(None);
        }
        let bad = |m: String| Err(NcpError::Config(m));
        let Some(w) = wiring else {
            return bad("sensors and motors name neurons: they need a wiring".into());
        };
        let id = |name: &str, what: &str| {
            w.neuron_id(name).ok_or_else(|| {
                NcpError::Config(format!(
                    "{what}: no neuron named {name:?} (neurons: {})",
                    w.neuron_names().join(", ")
                ))
            })
        };
        let mut pairs = Pairs::default();
        for (k, s) in sensors.iter().enumerate() {
            let what = format!("sensors[{k}]");
            if s.input >= input_size {
                return bad(format!(
                    "{what}: input {} is not below the {input_size} inputs",
                    s.input
                ));
            }
            if !(s.range > 0.0 && s.range.is_finite()) {
                return bad(format!("{what}: range {} must be positive", s.range));
            }
            pairs.sensors.push((s.input as i64, 1.0 / s.range));
            pairs.targets.push(id(&s.positive, &what)?);
            pairs.targets.push(id(&s.negative, &what)?);
        }
        for (k, m) in motors.iter().enumerate() {
            let what = format!("motors[{k}]");
            let (p, n) = (id(&m.positive, &what)?, id(&m.negative, &what)?);
            if p >= w.output_dim() || n >= w.output_dim() || p == n {
                return bad(format!(
                    "{what}: {} and {} must be two different motor neurons",
                    m.positive, m.negative
                ));
            }
            pairs.motors.push((p as i64, n as i64));
        }
        Ok(Some(pairs))
    }

    /// The built wiring: the sensor pairs' features feed their neurons, or every input feeds
    /// the wiring's own way when no sensor pairs are given.
    pub(crate) fn build(&self, wiring: &Wiring, input_size: usize) -> Result<Wiring, NcpError> {
        Ok(match self.targets.is_empty() {
            true => wiring.built(input_size)?,
            false => wiring.built_onto(&self.targets)?,
        })
    }

    /// Number of features the cell reads (`2 ×` sensor pairs), None without sensor pairs.
    pub(crate) fn features(&self) -> Option<usize> {
        (!self.sensors.is_empty()).then_some(self.targets.len())
    }

    /// Number of outputs, None without motor pairs.
    pub(crate) fn outputs(&self) -> Option<usize> {
        (!self.motors.is_empty()).then_some(self.motors.len())
    }

    /// Inputs `(…, S)` → the pair features `(…, 2P)` the cell reads.
    pub(crate) fn sense(&self, x: &Tensor) -> Tensor {
        if self.sensors.is_empty() {
            return x.shallow_clone();
        }
        let parts: Vec<Tensor> = self
            .sensors
            .iter()
            .flat_map(|&(i, scale)| {
                let xi = x.narrow(-1, i, 1) * scale;
                [xi.relu(), (-xi).relu()]
            })
            .collect();
        Tensor::cat(&parts, -1)
    }

    /// Motor outputs `(…, M)` → the outputs `(…, A)`: positive minus negative neuron.
    pub(crate) fn act(&self, y: Tensor) -> Tensor {
        if self.motors.is_empty() {
            return y;
        }
        let parts: Vec<Tensor> = self
            .motors
            .iter()
            .map(|&(p, n)| y.narrow(-1, p, 1) - y.narrow(-1, n, 1))
            .collect();
        Tensor::cat(&parts, -1)
    }

    /// Labels of the pair features from the inputs' names (`theta+`, `theta-`).
    pub(crate) fn feature_names(&self, names: &[String]) -> Vec<String> {
        if self.sensors.is_empty() {
            return names.to_vec();
        }
        let name = |i: i64| {
            names
                .get(i as usize)
                .cloned()
                .unwrap_or_else(|| format!("input{i}"))
        };
        self.sensors
            .iter()
            .flat_map(|&(i, _)| [format!("{}+", name(i)), format!("{}-", name(i))])
            .collect()
    }
}

impl NcpConfig {
    /// The wiring a network of this config builds for `input_size` inputs — through its
    /// sensor pairs where it has them — and the names of what its cell reads, from the
    /// inputs' `names`; None for a cell without a wiring. For drawing a config's circuit.
    pub fn built_wiring(
        &self,
        input_size: usize,
        names: &[String],
    ) -> Result<Option<(Wiring, Vec<String>)>, NcpError> {
        let Some(unbuilt) = self.wiring()? else {
            return Ok(None);
        };
        let pairs = Pairs::resolve(&self.sensors, &self.motors, Some(&unbuilt), input_size)?
            .unwrap_or_default();
        let wiring = pairs.build(&unbuilt, input_size)?;
        Ok(Some((wiring, pairs.feature_names(names))))
    }
}
