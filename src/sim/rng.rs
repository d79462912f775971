//! Seeded randomness: one independent stream per component, derived from one seed.
//!
//! The generator is implemented here (SplitMix64 to seed, xoshiro256** to draw) rather than
//! taken from a crate so that a trace recorded today replays byte for byte after any
//! dependency upgrade.

use std::fmt;
use std::str::FromStr;

/// The one seed of a run (`--seed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seed(pub u64);

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Seed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .map(Seed)
            .map_err(|_| format!("seed must be a non-negative integer, got `{s}`"))
    }
}

impl Seed {
    /// An independent generator for `component` (e.g. `"mock.faults"`, `"engine.jitter"`).
    /// Adding a component never changes the numbers another component draws.
    pub fn stream(self, component: &str) -> Rng {
        // FNV-1a of the component name, mixed with the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in component.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng::from_u64(self.0 ^ h.rotate_left(17))
    }
}

/// A small, fast, deterministic generator (xoshiro256**).
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn from_u64(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, bound]` (inclusive); `bound == 0` gives 0.
    pub fn up_to(&mut self, bound: u64) -> u64 {
        if bound == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (bound + 1)
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p.clamp(0.0, 1.0)
    }

    /// `len` characters from `alphabet`.
    pub fn token(&mut self, len: usize, alphabet: &[u8]) -> String {
        (0..len)
            .map(|_| alphabet[(self.next_u64() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers: xoshiro256** from the state `[1, 2, 3, 4]` (the algorithm's published
    /// first outputs), and two named streams as an independent implementation of the
    /// documented derivation (FNV-1a of the name, rotated 17 and mixed with the seed,
    /// SplitMix64 to fill the state) computes them. A change here breaks every recorded
    /// trace: the seed-stability promise.
    #[test]
    fn streams_match_their_known_answers() {
        let mut r = Rng { s: [1, 2, 3, 4] };
        let first: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(first, [11520, 0, 1509978240, 1215971899390074240]);
        let draw = |seed: u64, name: &str| -> Vec<u64> {
            let mut r = Seed(seed).stream(name);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(
            draw(42, "engine.jitter"),
            [
                14735100931644099276,
                8231683102957360377,
                11285235740343184672,
                3849858466842381604
            ]
        );
        assert_eq!(
            draw(7, "mock.faults"),
            [
                2755723147127448672,
                12763994148286338340,
                2220396279301811234,
                6683894554841829007
            ]
        );
    }

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = {
            let mut r = Seed(7).stream("x");
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Seed(7).stream("x");
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn components_are_independent() {
        let mut a = Seed(7).stream("mock.faults");
        let mut b = Seed(7).stream("engine.jitter");
        assert_ne!(a.next_u64(), b.next_u64());
        assert_ne!(
            Seed(7).stream("x").next_u64(),
            Seed(8).stream("x").next_u64()
        );
    }

    #[test]
    fn bounded_draws_stay_in_range() {
        let mut r = Seed(1).stream("t");
        for _ in 0..1000 {
            assert!(r.up_to(10) <= 10);
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }
}
