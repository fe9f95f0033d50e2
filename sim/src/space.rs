//! Observation and action spaces: what values an env accepts and produces, flattened to `f32`.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The set of valid values of an observation or action, as Gymnasium's `Box` and `Discrete`.
///
/// Every space is flattened to a `[f32]` of [`Space::dim`] components so that a batch of
/// envs shares one contiguous buffer; a `Discrete` value is one component holding the index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Space {
    /// Real vectors with per-component inclusive bounds (infinite bounds allowed).
    Box {
        /// Lower bound of each component.
        #[serde(with = "bounds")]
        low: Vec<f32>,
        /// Upper bound of each component.
        #[serde(with = "bounds")]
        high: Vec<f32>,
    },
    /// One integer choice in `0..n`, stored as a single `f32`.
    Discrete {
        /// Number of choices.
        n: u32,
    },
}

/// Why a space could not be built, so that a bad env definition fails at construction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpaceError {
    /// `low` and `high` differ in length.
    #[error("box bounds differ in length: {low} low vs {high} high")]
    LengthMismatch {
        /// Length of `low`.
        low: usize,
        /// Length of `high`.
        high: usize,
    },
    /// A bound is NaN or `low > high`.
    #[error("box component {component}: invalid bounds [{low}, {high}]")]
    InvalidBounds {
        /// Component index.
        component: usize,
        /// Its lower bound.
        low: f32,
        /// Its upper bound.
        high: f32,
    },
    /// A discrete space with no choices.
    #[error("discrete space needs at least one choice")]
    EmptyDiscrete,
}

/// Why a value is not in a space: the first offending component, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// The value has the wrong number of components.
    Length {
        /// Components the space has.
        expected: usize,
        /// Components the value has.
        got: usize,
    },
    /// A component is NaN or infinite where only finite values are allowed.
    NotFinite {
        /// Component index.
        component: usize,
        /// Its value.
        value: f32,
    },
    /// A component lies outside its bounds (or is not a valid discrete index).
    OutOfBounds {
        /// Component index.
        component: usize,
        /// Its value.
        value: f32,
        /// Lowest valid value.
        low: f32,
        /// Highest valid value.
        high: f32,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Length { expected, got } => {
                write!(f, "has {got} components, expected {expected}")
            }
            Violation::NotFinite { component, value } => {
                write!(f, "component {component} is {value}")
            }
            Violation::OutOfBounds {
                component,
                value,
                low,
                high,
            } => write!(
                f,
                "component {component} = {value} is outside [{low}, {high}]"
            ),
        }
    }
}

impl Space {
    /// A box with per-component bounds, checked so that sampling and clipping are well defined.
    pub fn bounded(low: Vec<f32>, high: Vec<f32>) -> Result<Space, SpaceError> {
        let space = Space::Box { low, high };
        space.validate()?;
        Ok(space)
    }

    /// A box with the same bounds on every component, the common case for actions.
    pub fn uniform(dim: usize, low: f32, high: f32) -> Result<Space, SpaceError> {
        Space::bounded(vec![low; dim], vec![high; dim])
    }

    /// A discrete space with `n` choices.
    pub fn discrete(n: u32) -> Result<Space, SpaceError> {
        let space = Space::Discrete { n };
        space.validate()?;
        Ok(space)
    }

    /// Checks the invariants (equal lengths, `low <= high`, no NaN, `n >= 1`).
    pub fn validate(&self) -> Result<(), SpaceError> {
        match self {
            Space::Box { low, high } => {
                if low.len() != high.len() {
                    return Err(SpaceError::LengthMismatch {
                        low: low.len(),
                        high: high.len(),
                    });
                }
                for (component, (&l, &h)) in low.iter().zip(high).enumerate() {
                    let ordered = matches!(
                        l.partial_cmp(&h),
                        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                    );
                    // NaN compares as unordered; a box must not be empty at infinity.
                    if !ordered || l == f32::INFINITY || h == f32::NEG_INFINITY {
                        return Err(SpaceError::InvalidBounds {
                            component,
                            low: l,
                            high: h,
                        });
                    }
                }
                Ok(())
            }
            Space::Discrete { n } => {
                if *n == 0 {
                    Err(SpaceError::EmptyDiscrete)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Number of `f32` components a value of this space occupies in a flat buffer.
    pub fn dim(&self) -> usize {
        match self {
            Space::Box { low, .. } => low.len(),
            Space::Discrete { .. } => 1,
        }
    }

    /// Whether `x` is a valid value (right length, finite, within bounds / a valid index).
    pub fn contains(&self, x: &[f32]) -> bool {
        self.check(x).is_ok()
    }

    /// Like [`Space::contains`] but says which component is wrong, for error messages.
    pub fn check(&self, x: &[f32]) -> Result<(), Violation> {
        if x.len() != self.dim() {
            return Err(Violation::Length {
                expected: self.dim(),
                got: x.len(),
            });
        }
        match self {
            Space::Box { low, high } => {
                for (component, ((&v, &l), &h)) in x.iter().zip(low).zip(high).enumerate() {
                    // Values must be finite even where the bounds are infinite.
                    if !v.is_finite() {
                        return Err(Violation::NotFinite {
                            component,
                            value: v,
                        });
                    }
                    if v < l || v > h {
                        return Err(Violation::OutOfBounds {
                            component,
                            value: v,
                            low: l,
                            high: h,
                        });
                    }
                }
                Ok(())
            }
            Space::Discrete { n } => {
                let v = x[0];
                if !v.is_finite() {
                    return Err(Violation::NotFinite {
                        component: 0,
                        value: v,
                    });
                }
                if v < 0.0 || v >= *n as f32 || v.fract() != 0.0 {
                    return Err(Violation::OutOfBounds {
                        component: 0,
                        value: v,
                        low: 0.0,
                        high: (*n - 1) as f32,
                    });
                }
                Ok(())
            }
        }
    }

    /// Clamps each finite component into the bounds (Gymnasium's `ClipAction`); NaN is left
    /// alone so that [`Space::check`] still reports it.
    pub fn clip(&self, x: &mut [f32]) {
        if let Space::Box { low, high } = self {
            for ((v, &l), &h) in x.iter_mut().zip(low).zip(high) {
                if !v.is_nan() {
                    *v = v.clamp(l, h);
                }
            }
        }
    }

    /// Writes a random member into `out`, as Gymnasium's `sample`: uniform on bounded
    /// components, shifted exponential on half-bounded ones, standard normal on unbounded ones.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        match self {
            Space::Box { low, high } => {
                for ((o, &l), &h) in out.iter_mut().zip(low).zip(high) {
                    *o = match (l.is_finite(), h.is_finite()) {
                        (true, true) => {
                            let u: f32 = rng.random();
                            (l + u * (h - l)).clamp(l, h)
                        }
                        (true, false) => l + crate::noise::exponential(rng) as f32,
                        (false, true) => h - crate::noise::exponential(rng) as f32,
                        (false, false) => crate::noise::standard_normal(rng) as f32,
                    };
                }
            }
            Space::Discrete { n } => {
                out[0] = rng.random_range(0..*n) as f32;
            }
        }
    }
}

/// JSON has no infinity: infinite bounds are written as the strings `"inf"` / `"-inf"`.
mod bounds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Finite(f32),
        Named(String),
    }

    pub fn serialize<S: Serializer>(values: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let bounds: Vec<Bound> = values
            .iter()
            .map(|&v| {
                if v == f32::INFINITY {
                    Bound::Named("inf".into())
                } else if v == f32::NEG_INFINITY {
                    Bound::Named("-inf".into())
                } else {
                    Bound::Finite(v)
                }
            })
            .collect();
        bounds.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let bounds = Vec::<Bound>::deserialize(d)?;
        bounds
            .into_iter()
            .map(|b| match b {
                Bound::Finite(v) => Ok(v),
                Bound::Named(name) => match name.as_str() {
                    "inf" => Ok(f32::INFINITY),
                    "-inf" => Ok(f32::NEG_INFINITY),
                    other => Err(serde::de::Error::custom(format!(
                        "bound `{other}` is neither a number nor \"inf\" / \"-inf\""
                    ))),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn bound() -> impl Strategy<Value = (f32, f32)> {
        prop_oneof![
            (-100.0f32..100.0, 0.0f32..50.0).prop_map(|(l, w)| (l, l + w)),
            (-100.0f32..100.0).prop_map(|l| (l, f32::INFINITY)),
            (-100.0f32..100.0).prop_map(|h| (f32::NEG_INFINITY, h)),
            Just((f32::NEG_INFINITY, f32::INFINITY)),
        ]
    }

    fn box_space() -> impl Strategy<Value = Space> {
        proptest::collection::vec(bound(), 1..8).prop_map(|b| {
            let (low, high) = b.into_iter().unzip();
            Space::bounded(low, high).expect("valid bounds")
        })
    }

    proptest! {
        #[test]
        fn box_samples_are_contained(space in box_space(), seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut x = vec![0.0; space.dim()];
            for _ in 0..20 {
                space.sample(&mut rng, &mut x);
                prop_assert!(space.contains(&x), "{:?} not in {:?}", x, space);
            }
        }

        #[test]
        fn discrete_samples_are_contained_and_cover(n in 1u32..20, seed in any::<u64>()) {
            let space = Space::discrete(n).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut seen = vec![false; n as usize];
            let mut x = [0.0];
            for _ in 0..(n * 60) {
                space.sample(&mut rng, &mut x);
                prop_assert!(space.contains(&x));
                seen[x[0] as usize] = true;
            }
            prop_assert!(seen.iter().all(|&s| s), "not every choice sampled: {:?}", seen);
        }

        #[test]
        fn clip_lands_inside_and_keeps_members(space in box_space(), x in proptest::collection::vec(-1e6f32..1e6, 8)) {
            let mut y = x[..space.dim()].to_vec();
            let was_inside = space.contains(&y);
            let before = y.clone();
            space.clip(&mut y);
            prop_assert!(space.contains(&y));
            if was_inside {
                prop_assert_eq!(before, y);
            }
        }

        #[test]
        fn wrong_length_is_never_contained(space in box_space(), extra in 1usize..3) {
            let x = vec![0.0; space.dim() + extra];
            let is_length_violation = matches!(space.check(&x), Err(Violation::Length { .. }));
            prop_assert!(is_length_violation);
            prop_assert!(!space.contains(&x[..space.dim() - 1]));
        }

        #[test]
        fn discrete_rejects_non_indices(n in 1u32..10, v in -5.0f32..15.0) {
            let space = Space::discrete(n).unwrap();
            let ok = v >= 0.0 && v < n as f32 && v.fract() == 0.0;
            prop_assert_eq!(space.contains(&[v]), ok);
        }

        #[test]
        fn spaces_round_trip_through_serde(space in box_space()) {
            let text = serde_json::to_string(&space).unwrap();
            let back: Space = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(space, back);
        }
    }

    #[test]
    fn nan_is_rejected_and_survives_clipping() {
        let space = Space::uniform(2, -1.0, 1.0).unwrap();
        let mut x = [f32::NAN, 3.0];
        space.clip(&mut x);
        assert_eq!(x[1], 1.0);
        assert!(matches!(
            space.check(&x),
            Err(Violation::NotFinite { component: 0, .. })
        ));
        let unbounded = Space::Box {
            low: vec![f32::NEG_INFINITY],
            high: vec![f32::INFINITY],
        };
        assert!(unbounded.contains(&[1e30]));
        assert!(!unbounded.contains(&[f32::INFINITY]));
    }

    #[test]
    fn invalid_spaces_are_rejected() {
        assert!(Space::bounded(vec![0.0], vec![0.0, 1.0]).is_err());
        assert!(Space::bounded(vec![1.0], vec![0.0]).is_err());
        assert!(Space::bounded(vec![f32::NAN], vec![0.0]).is_err());
        assert!(Space::discrete(0).is_err());
    }
}
