//! Bit-exact ports of the two numpy random generators that ncps's wirings draw from, so that a
//! wiring built here with the same seed has exactly the synapses ncps builds (and checkpoints
//! trained in Python line up with our masks).
//!
//! * `NCP`/`AutoNCP` use the legacy `numpy.random.RandomState` (MT19937, masked rejection).
//! * `FullyConnected`/`Random` use `numpy.random.default_rng` (PCG64 seeded by `SeedSequence`,
//!   Lemire's bounded integers, Floyd's sampling without replacement).

use std::collections::HashSet;

/// numpy's legacy `RandomState(seed)`: MT19937 with the masked-rejection integer sampler.
pub struct LegacyRandomState {
    mt: [u32; 624],
    pos: usize,
}

impl LegacyRandomState {
    /// Seeds exactly like `RandomState(seed)` for an integer seed in `[0, 2^32)`.
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { mt, pos: 624 }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..624 {
            let y = (self.mt[i] & UPPER) | (self.mt[(i + 1) % 624] & LOWER);
            let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= MATRIX_A;
            }
            self.mt[i] = v;
        }
        self.pos = 0;
    }

    /// One tempered 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.generate();
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// Uniform integer in `[0, max]` (numpy's `random_interval`).
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.choice(items)`: one element, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.interval(items.len() as u32 - 1) as usize]
    }

    /// `RandomState.choice(items, k, replace=False)`: a full permutation, first `k` taken.
    pub fn choose<T: Copy>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let n = items.len();
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            perm.swap(i, j);
        }
        perm[..k].iter().map(|&i| items[i]).collect()
    }
}

/// numpy's `default_rng(seed)`: PCG64 (XSL-RR) seeded through `SeedSequence`.
pub struct Pcg64 {
    state: u128,
    inc: u128,
    buffered: Option<u32>,
}

const PCG_MULT: u128 = (2_549_297_995_355_413_924u128 << 64) + 4_865_540_595_714_422_341u128;

impl Pcg64 {
    /// Seeds exactly like `numpy.random.default_rng(seed)` for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        let words = seed_sequence_state(seed);
        let initstate = ((words[0] as u128) << 64) | words[1] as u128;
        let initseq = ((words[2] as u128) << 64) | words[3] as u128;
        let mut rng = Self {
            state: 0,
            inc: (initseq << 1) | 1,
            buffered: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    fn next_u64(&mut self) -> u64 {
        self.step();
        let s = self.state;
        let rot = (s >> 122) as u32;
        (((s >> 64) as u64) ^ (s as u64)).rotate_right(rot)
    }

    fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.buffered.take() {
            return v;
        }
        let v = self.next_u64();
        self.buffered = Some((v >> 32) as u32);
        v as u32
    }

    /// Uniform integer in `[0, max]` by Lemire's method on 32-bit draws.
    pub fn bounded(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        if max == u32::MAX {
            return self.next_u32();
        }
        let n = max as u64 + 1;
        let mut m = self.next_u32() as u64 * n;
        let mut leftover = m & 0xffff_ffff;
        if leftover < n {
            let threshold = ((1u64 << 32) - n) % n;
            while leftover < threshold {
                m = self.next_u32() as u64 * n;
                leftover = m & 0xffff_ffff;
            }
        }
        (m >> 32) as u32
    }

    /// `Generator.choice(items)`: one element, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.bounded(items.len() as u32 - 1) as usize]
    }

    /// `Generator.choice(n, k, replace=False)`: indices of `k` distinct candidates out of `n`,
    /// in numpy's (shuffled) order.
    pub fn choose_indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        if n > 10_000 && k > n / 50 {
            let mut idx: Vec<usize> = (0..n).collect();
            let stop = (n - k).max(1);
            for i in (stop..n).rev() {
                let j = self.bounded(i as u32) as usize;
                idx.swap(i, j);
            }
            return idx[n - k..].to_vec();
        }
        let mut seen = HashSet::with_capacity(k);
        let mut out = Vec::with_capacity(k);
        for j in (n - k)..n {
            let val = self.bounded(j as u32) as usize;
            if seen.insert(val) {
                out.push(val);
            } else {
                seen.insert(j);
                out.push(j);
            }
        }
        for i in (1..k).rev() {
            let j = self.bounded(i as u32) as usize;
            out.swap(i, j);
        }
        out
    }
}

/// `SeedSequence(seed).generate_state(4, uint64)`.
fn seed_sequence_state(seed: u64) -> [u64; 4] {
    const INIT_A: u32 = 0x43b0_d7e5;
    const MULT_A: u32 = 0x931e_8875;
    const INIT_B: u32 = 0x8b51_f9dd;
    const MULT_B: u32 = 0x58f3_8ded;
    const MIX_MULT_L: u32 = 0xca01_f9dd;
    const MIX_MULT_R: u32 = 0x4973_f715;
    const XSHIFT: u32 = 16;
    let entropy: Vec<u32> = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };
    let mut hash_const = INIT_A;
    let hashmix = |value: u32, hc: &mut u32| -> u32 {
        let mut v = value ^ *hc;
        *hc = hc.wrapping_mul(MULT_A);
        v = v.wrapping_mul(*hc);
        v ^ (v >> XSHIFT)
    };
    let mix = |x: u32, y: u32| -> u32 {
        let r = MIX_MULT_L
            .wrapping_mul(x)
            .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        r ^ (r >> XSHIFT)
    };
    let mut pool = [0u32; 4];
    for (i, slot) in pool.iter_mut().enumerate() {
        let e = entropy.get(i).copied().unwrap_or(0);
        *slot = hashmix(e, &mut hash_const);
    }
    for i_src in 0..4 {
        for i_dst in 0..4 {
            if i_src != i_dst {
                let h = hashmix(pool[i_src], &mut hash_const);
                pool[i_dst] = mix(pool[i_dst], h);
            }
        }
    }
    for &e in entropy.iter().skip(4) {
        for slot in pool.iter_mut() {
            let h = hashmix(e, &mut hash_const);
            *slot = mix(*slot, h);
        }
    }
    let mut hc = INIT_B;
    let mut words = [0u32; 8];
    for (i, w) in words.iter_mut().enumerate() {
        let mut v = pool[i % 4] ^ hc;
        hc = hc.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hc);
        *w = v ^ (v >> XSHIFT);
    }
    let mut out = [0u64; 4];
    for (i, o) in out.iter_mut().enumerate() {
        *o = words[2 * i] as u64 | ((words[2 * i + 1] as u64) << 32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // First outputs of MT19937 seeded with 5489 (the reference implementation's default).
        let mut rng = LegacyRandomState::new(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
        assert_eq!(rng.next_u32(), 581_869_302);
    }

    #[test]
    fn choose_returns_distinct_items() {
        let mut rng = Pcg64::new(1111);
        let mut picked = rng.choose_indices(50, 20);
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 20);
        assert!(picked.iter().all(|&i| i < 50));
    }
}
