//! Random draws that several parts of wormnet need with the same definition: environments
//! (sensor noise, unbounded action spaces) and the evaluator (observation noise), so one seed
//! means the same numbers everywhere.

use rand::Rng;

/// A standard normal sample by Box–Muller, from `rng` (one pair of uniforms per sample).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 − u1 lies in (0, 1], so the logarithm is finite.
    let u1: f64 = rng.random();
    let u2: f64 = rng.random();
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An exponential(1) sample by inversion.
pub fn exponential<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u: f64 = rng.random();
    -(1.0 - u).ln()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn samples_have_the_right_moments() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let normal: Vec<f64> = (0..n).map(|_| super::standard_normal(&mut rng)).collect();
        let mean = normal.iter().sum::<f64>() / n as f64;
        let var = normal.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        let expo: Vec<f64> = (0..n).map(|_| super::exponential(&mut rng)).collect();
        let mean = expo.iter().sum::<f64>() / n as f64;
        assert!(
            (mean - 1.0).abs() < 0.05 && expo.iter().all(|&x| x >= 0.0),
            "{mean}"
        );
    }
}
