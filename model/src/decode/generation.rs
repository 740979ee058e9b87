//! Choosing tokens from logits exactly as transformers' `generate` does (v5): greedy search
//! (`_sample` without sampling) and beam search (`_beam_search`), with the logits processors
//! Florence-2 uses — no-repeat n-grams, minimum new tokens, forced BOS and forced EOS — in
//! transformers' order. Plain f32 arithmetic on the CPU, like torch's, so that scores tie
//! and round the same way.
//!
//! The search never touches tensors: the caller runs the decoder on
//! [`Search::next_input`] and hands back the logits, so the same search drives a
//! synchronous CPU loop and an asynchronous GPU one.

use crate::error::{Error, Result};
use crate::load::config::{EarlyStopping, GenerationConfig};

/// transformers' stand-in for minus infinity in beam bookkeeping.
const NEG_LARGE: f32 = -1.0e9;

/// What to feed the decoder next: one token per row, and for each row the index of the
/// previous row whose cache it continues (beam reordering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextInput {
    pub tokens: Vec<u32>,
    pub cache_rows: Vec<usize>,
}

/// A greedy or beam search in progress.
pub struct Search {
    cfg: GenerationConfig,
    vocab: usize,
    /// `1 + max_new_tokens`: the decoder start token plus the new ones.
    max_length: usize,
    state: State,
}

enum State {
    Greedy { sequence: Vec<u32>, done: bool },
    Beam(Box<Beams>),
}

/// Beam search state (batch size 1): transformers' running tensors, a beam or a hypothesis
/// per entry.
struct Beams {
    /// `num_beams` running beams, best first.
    running: Vec<Beam>,
    /// Which previous row each running beam continues, for the next decoder step (one row at
    /// the first step).
    cache_rows: Vec<usize>,
    /// The finished pool: `num_beams` places, best first.
    finished: Vec<Hypothesis>,
    early_stop_unsatisfied: bool,
    done: bool,
}

/// A running beam: its ids, its score (the sum of its tokens' log-probabilities), and the
/// row of the last logits that continues it: at the start all beams share the single row of
/// the decoder start token (transformers computes it `num_beams` times, identically).
struct Beam {
    ids: Vec<u32>,
    score: f32,
    logits_row: usize,
}

/// A running beam extended by one token: its score (the beam's plus the token's log-probability),
/// which beam it continues, its ids, and whether it hits a stopping criterion (max length or
/// EOS).
struct Candidate {
    score: f32,
    beam: usize,
    ids: Vec<u32>,
    stops: bool,
}

/// An entry of the finished pool: a sequence with its length-penalised score, and whether it
/// really finished (the pool's empty places hold a score of `NEG_LARGE` and `false`).
#[derive(Clone)]
struct Hypothesis {
    score: f32,
    ids: Vec<u32>,
    finished: bool,
}

impl Hypothesis {
    /// An empty place of the pool.
    fn empty() -> Self {
        Hypothesis {
            score: NEG_LARGE,
            ids: Vec::new(),
            finished: false,
        }
    }
}

impl Search {
    pub fn new(cfg: &GenerationConfig, vocab: usize) -> Result<Self> {
        cfg.validate(vocab)?;
        let start = vec![cfg.decoder_start_token_id];
        let state = if cfg.num_beams == 1 {
            State::Greedy {
                sequence: start,
                done: false,
            }
        } else {
            let n = cfg.num_beams;
            // Only the first beam counts at the start: the others are copies of it.
            let running = (0..n)
                .map(|i| Beam {
                    ids: start.clone(),
                    score: if i == 0 { 0.0 } else { NEG_LARGE },
                    logits_row: 0,
                })
                .collect();
            State::Beam(Box::new(Beams {
                running,
                cache_rows: vec![0],
                finished: vec![Hypothesis::empty(); n],
                early_stop_unsatisfied: true,
                done: false,
            }))
        };
        Ok(Search {
            cfg: cfg.clone(),
            vocab,
            max_length: 1 + cfg.max_new_tokens,
            state,
        })
    }

    pub fn is_done(&self) -> bool {
        match &self.state {
            State::Greedy { done, .. } => *done,
            State::Beam(b) => b.done,
        }
    }

    /// The decoder's next input. At the first step there is one row (the start token), even
    /// for beam search.
    pub fn next_input(&self) -> NextInput {
        match &self.state {
            State::Greedy { sequence, .. } => NextInput {
                tokens: vec![*sequence.last().unwrap_or(&0)],
                cache_rows: vec![0],
            },
            State::Beam(b) => {
                let distinct_rows = b.cache_rows.len();
                let tokens = if b.running[0].ids.len() == 1 {
                    vec![self.cfg.decoder_start_token_id; distinct_rows]
                } else {
                    b.running
                        .iter()
                        .map(|beam| *beam.ids.last().unwrap_or(&0))
                        .collect()
                };
                NextInput {
                    tokens,
                    cache_rows: b.cache_rows.clone(),
                }
            }
        }
    }

    /// Consumes the logits (`rows × vocab`, row-major) of the last [`Search::next_input`].
    pub fn push_logits(&mut self, logits: &[f32]) -> Result<()> {
        let rows = self.next_input().tokens.len();
        if logits.len() != rows * self.vocab {
            return Err(Error::Input(format!(
                "{} logits for {rows} rows of {} tokens",
                logits.len(),
                self.vocab
            )));
        }
        if self.is_done() {
            return Err(Error::Input("the search is already finished".into()));
        }
        let (vocab, max_length) = (self.vocab, self.max_length);
        let cfg = self.cfg.clone();
        match &mut self.state {
            State::Greedy { sequence, done } => {
                let mut scores = logits.to_vec();
                process(&cfg, max_length, sequence, &mut scores);
                let next = argmax(&scores) as u32;
                sequence.push(next);
                *done = cfg.eos_token_id == Some(next) || sequence.len() >= max_length;
            }
            State::Beam(b) => b.step(&cfg, vocab, max_length, logits),
        }
        Ok(())
    }

    /// For a greedy search not yet done: the tokens its next step cannot choose (see
    /// [`Search::push_greedy_candidates`]). `None` for beam search, which needs every logit.
    pub fn greedy_banned(&self) -> Option<Vec<u32>> {
        match &self.state {
            State::Greedy {
                sequence,
                done: false,
            } => Some(banned_tokens(&self.cfg, sequence)),
            _ => None,
        }
    }

    /// A greedy step given only the logits of `candidates` (the others count as −∞): when
    /// the list holds every token not in [`Search::greedy_banned`] whose logit can be the
    /// largest (ties included), the step chooses what [`Search::push_logits`] would.
    pub fn push_greedy_candidates(&mut self, candidates: &[(u32, f32)]) -> Result<()> {
        if self.greedy_banned().is_none() {
            return Err(Error::Input(
                "candidate logits are for a greedy search still running".into(),
            ));
        }
        let mut logits = vec![f32::NEG_INFINITY; self.vocab];
        for &(token, logit) in candidates {
            let Some(slot) = logits.get_mut(token as usize) else {
                return Err(Error::Input(format!(
                    "candidate token {token} is outside the vocabulary ({})",
                    self.vocab
                )));
            };
            *slot = logit;
        }
        self.push_logits(&logits)
    }

    /// The generated ids, starting with the decoder start token (as `generate` returns them).
    pub fn best(&self) -> Vec<u32> {
        match &self.state {
            State::Greedy { sequence, .. } => sequence.clone(),
            State::Beam(b) => {
                if b.finished[0].finished {
                    b.finished[0].ids.clone()
                } else {
                    b.running[0].ids.clone()
                }
            }
        }
    }
}

impl Beams {
    fn step(&mut self, cfg: &GenerationConfig, vocab: usize, max_length: usize, logits: &[f32]) {
        let n = cfg.num_beams;
        let cur_len = self.running[0].ids.len();
        let prompt_len = 1;
        // b. log-softmax, processors, plus each beam's running score.
        let mut acc = vec![0.0f32; n * vocab];
        for (b, beam) in self.running.iter().enumerate() {
            let row = &logits[beam.logits_row * vocab..][..vocab];
            let scores = &mut acc[b * vocab..][..vocab];
            log_softmax(row, scores);
            process(cfg, max_length, &beam.ids, scores);
            for s in scores.iter_mut() {
                *s += beam.score;
            }
        }
        // c. top-K continuations (K = 2 × beams, enough for `num_beams` not to end at EOS),
        // d. each marked if it hits a stopping criterion (max length or EOS).
        let keep = 2 * n;
        let top = top_k(&acc, keep);
        let candidates: Vec<Candidate> = top
            .iter()
            .map(|&(score, i)| {
                let (beam, token) = (i / vocab, (i % vocab) as u32);
                let mut ids = self.running[beam].ids.clone();
                ids.push(token);
                let stops = ids.len() >= max_length || cfg.eos_token_id == Some(token);
                Candidate {
                    score,
                    beam,
                    ids,
                    stops,
                }
            })
            .collect();
        // e. the best unfinished candidates run on.
        let running_scores: Vec<f32> = candidates
            .iter()
            .map(|c| {
                if c.stops {
                    c.score + NEG_LARGE
                } else {
                    c.score
                }
            })
            .collect();
        let next = top_k(&running_scores, n);
        // f. finished candidates among the top `num_beams` enter the finished pool.
        let gen_len = (cur_len + 1 - prompt_len) as f64;
        let divisor = gen_len.powf(cfg.length_penalty as f64) as f32;
        let all_finished = self.finished.iter().all(|h| h.finished);
        let mut pool = self.finished.clone();
        for (i, candidate) in candidates.iter().enumerate() {
            let mut s = candidate.score / divisor;
            if all_finished && cfg.early_stopping == EarlyStopping::True {
                s += NEG_LARGE;
            }
            if !self.early_stop_unsatisfied {
                s += NEG_LARGE;
            }
            let just_finished = candidate.stops && i < n;
            if !just_finished {
                s += NEG_LARGE;
            }
            pool.push(Hypothesis {
                score: s,
                ids: candidate.ids.clone(),
                finished: just_finished,
            });
        }
        let pool_scores: Vec<f32> = pool.iter().map(|h| h.score).collect();
        self.finished = top_k(&pool_scores, n)
            .iter()
            .map(|&(_, i)| pool[i].clone())
            .collect();
        // g. next iteration's beams, cache order and stopping condition.
        self.cache_rows = next
            .iter()
            .map(|&(_, i)| self.running[candidates[i].beam].logits_row)
            .collect();
        self.running = next
            .iter()
            .enumerate()
            .map(|(row, &(score, i))| Beam {
                ids: candidates[i].ids.clone(),
                score,
                logits_row: row,
            })
            .collect();
        let cur_len = cur_len + 1;
        let best_len = if cfg.early_stopping == EarlyStopping::Never && cfg.length_penalty > 0.0 {
            max_length - prompt_len
        } else {
            cur_len - prompt_len
        };
        let best_possible =
            self.running[0].score / (best_len as f64).powf(cfg.length_penalty as f64) as f32;
        let worst_finished = self
            .finished
            .iter()
            .map(|h| h.score)
            .fold(f32::INFINITY, f32::min);
        self.early_stop_unsatisfied = self.early_stop_unsatisfied
            && self.finished.iter().any(|h| {
                best_possible
                    > if h.finished {
                        worst_finished
                    } else {
                        NEG_LARGE
                    }
            });
        let open_beam = !(self.finished.iter().all(|h| h.finished)
            && cfg.early_stopping == EarlyStopping::True);
        let valid_continuations = !candidates.iter().all(|c| c.stops);
        self.done = !(self.early_stop_unsatisfied && open_beam && valid_continuations);
    }
}

/// transformers' logits processors, in the order `_get_logits_processor` builds them.
/// `sequence` is the hypothesis so far (decoder start token included).
fn process(cfg: &GenerationConfig, max_length: usize, sequence: &[u32], scores: &mut [f32]) {
    let cur_len = sequence.len();
    for token in banned_tokens(cfg, sequence) {
        scores[token as usize] = f32::NEG_INFINITY;
    }
    if let Some(bos) = cfg.forced_bos_token_id
        && cur_len == 1
    {
        force(scores, bos);
    }
    if let Some(eos) = cfg.forced_eos_token_id
        && cur_len == max_length - 1
    {
        force(scores, eos);
    }
}

/// The tokens the processors set to −∞ after `sequence` (before any forced token): repeated
/// n-grams, and the end of sequence while too few tokens are new.
fn banned_tokens(cfg: &GenerationConfig, sequence: &[u32]) -> Vec<u32> {
    let mut banned = if cfg.no_repeat_ngram_size > 0 {
        banned_ngram_tokens(sequence, cfg.no_repeat_ngram_size)
    } else {
        Vec::new()
    };
    if let Some(eos) = cfg.eos_token_id
        && cfg.min_new_tokens > 0
        && sequence.len() - 1 < cfg.min_new_tokens
    {
        banned.push(eos);
    }
    banned
}

fn force(scores: &mut [f32], token: u32) {
    scores.fill(f32::NEG_INFINITY);
    scores[token as usize] = 0.0;
}

/// Tokens that would repeat an n-gram already in `sequence` (`NoRepeatNGramLogitsProcessor`).
fn banned_ngram_tokens(sequence: &[u32], n: usize) -> Vec<u32> {
    let len = sequence.len();
    if len < n {
        return Vec::new();
    }
    let prefix = &sequence[len + 1 - n..];
    sequence
        .windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

/// `x - max - log(Σ exp(x - max))`, torch's log-softmax.
fn log_softmax(x: &[f32], out: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = x.iter().map(|&v| ((v - max) as f64).exp()).sum();
    let log_sum = sum.ln() as f32;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - max) - log_sum;
    }
}

/// Index of the first maximum (torch's argmax).
fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// The `k` largest values with their indices, largest first; ties keep index order.
// `!(v > t)` on purpose: a NaN is never larger, which `v <= t` would not say.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn top_k(x: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut top: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (i, &v) in x.iter().enumerate() {
        if top.len() == k && !(v > top[k - 1].0) {
            continue;
        }
        let at = top.iter().position(|&(t, _)| v > t).unwrap_or(top.len());
        top.insert(at, (v, i));
        top.truncate(k);
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngram_ban_follows_transformers() {
        // 3-grams of [2, 5, 6, 7, 5, 6]: the last 2 tokens (5, 6) were followed by 7.
        assert_eq!(banned_ngram_tokens(&[2, 5, 6, 7, 5, 6], 3), vec![7]);
        assert!(banned_ngram_tokens(&[2, 5], 3).is_empty());
    }

    #[test]
    fn top_k_is_sorted_and_stable() {
        assert_eq!(
            top_k(&[1.0, 3.0, 3.0, f32::NEG_INFINITY, 2.0], 3),
            vec![(3.0, 1), (3.0, 2), (2.0, 4)]
        );
    }
}
