//! A small mutation fuzzer for stable Rust: deterministic (a fixed seed gives
//! the same inputs every run, so a failure replays), bounded by a count, in the
//! spirit of libFuzzer's mutators (bit flips, interesting bytes, token
//! insertion, erasing, duplicating, splicing seeds). No coverage feedback: that
//! is what `cargo fuzz` adds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Fragments that matter to the parsers under test: separators, escapes, JSON
/// and JWT syntax, numbers at the edges.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"null",
    b"true",
    b"false",
    b"-1",
    b"0",
    b"1e999",
    b"-0.0",
    b"18446744073709551616",
    b"9007199254740993",
    b"\\u0000",
    b"\\ud800",
    b"%",
    b"%00",
    b"%zz",
    b"%2F",
    b"+",
    b"=",
    b"&",
    b";",
    b"\r\n",
    b"\n",
    b"\n\n",
    b" ",
    b".",
    b"..",
    b"eyJ",
    b"eyJhbGciOiJub25lIn0",
    b"__Host-",
    b"oidc_session=",
    b"cookie: ",
    b"content-type: application/x-www-form-urlencoded",
    b"\xff",
    b"\xc3\x28",
    b"\xf0\x9f\x92\xa9",
];

/// xorshift64*: plenty for choosing mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Applies one to eight random mutations to `input`, kept under `max_len`.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], max_len: usize) {
    for _ in 0..=rng.below(8) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = [0, 0x7f, 0x80, 0xff, b'0', b'A', b'"', b'\\'][rng.below(8)];
            }
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                input.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let copy = input[start..end].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, copy);
            }
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let cut = rng.below(len + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                let at = rng.below(len + 1);
                let byte = rng.next_u64() as u8;
                input.insert(at, byte);
            }
        }
    }
    input.truncate(max_len);
}

/// An input that made a target panic.
#[derive(Debug)]
pub struct Finding {
    pub target: String,
    pub message: String,
    /// Where the input was saved, to replay it (or hand it to `cargo fuzz run`).
    pub saved: PathBuf,
}

/// What a bounded run did.
#[derive(Debug)]
pub struct Summary {
    pub executions: usize,
    pub findings: Vec<Finding>,
}

/// Runs `target` on every seed, then on `iterations` mutants of them. Inputs
/// that panic are saved under `out_dir/<target>/`.
pub fn run(
    name: &str,
    target: fn(&[u8]),
    seeds: &[Vec<u8>],
    iterations: usize,
    rng_seed: u64,
    out_dir: &Path,
) -> Summary {
    let mut rng = Rng::new(rng_seed);
    let mut summary = Summary {
        executions: 0,
        findings: Vec::new(),
    };
    let attempt = |input: &[u8], summary: &mut Summary| {
        summary.executions += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(input))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            let saved = save(out_dir, name, input);
            summary.findings.push(Finding {
                target: name.to_owned(),
                message,
                saved,
            });
        }
    };
    for seed in seeds {
        attempt(seed, &mut summary);
    }
    for _ in 0..iterations {
        if summary.findings.len() >= 5 {
            break;
        }
        let mut input = if seeds.is_empty() {
            Vec::new()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        mutate(&mut rng, &mut input, seeds, 8192);
        attempt(&input, &mut summary);
    }
    summary
}

fn save(out_dir: &Path, name: &str, input: &[u8]) -> PathBuf {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    input.hash(&mut hasher);
    let dir = out_dir.join(name);
    let path = dir.join(format!("crash-{:016x}", hasher.finish()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, input);
    path
}

/// The seed inputs of `target`, from `<seeds_dir>/<target>/`, in name order.
pub fn seeds(seeds_dir: &Path, target: &str) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(seeds_dir.join(target))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    paths.iter().map(std::fs::read).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutants() {
        let seeds = vec![b"{\"a\": 1}".to_vec(), b"a=b&c=d".to_vec()];
        let mutants = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|i| {
                    let mut input = seeds[i % 2].clone();
                    mutate(&mut rng, &mut input, &seeds, 64);
                    input
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(mutants(7), mutants(7));
        assert_ne!(mutants(7), mutants(8));
        assert!(mutants(7).iter().all(|m| m.len() <= 64));
    }

    #[test]
    fn a_panicking_target_is_reported_with_its_input_saved() {
        fn picky(data: &[u8]) {
            assert!(!data.contains(&b'"'), "a quote");
        }
        let out = std::env::temp_dir().join(format!("fuzz-self-test-{}", std::process::id()));
        let summary = run("picky", picky, &[b"{}".to_vec()], 2000, 1, &out);
        let finding = summary
            .findings
            .first()
            .expect("the mutator inserts quotes");
        assert!(finding.message.contains("a quote"));
        assert!(std::fs::read(&finding.saved).unwrap().contains(&b'"'));
        let _ = std::fs::remove_dir_all(&out);
    }
}
