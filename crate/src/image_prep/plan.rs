//! Choosing the size and JPEG quality that fit a byte budget.
//!
//! Not a blind loop: the first encode measures how many bytes a pixel of *this* image costs;
//! from that the planner predicts the quality (and, if need be, the size) that fits, with a
//! margin, and corrects once more from the next measurement if the prediction missed. Quality
//! goes down to 0.75 before the size shrinks, because the model sees at most 768×768 and loses
//! more from fewer pixels than from a slightly softer JPEG.

use crate::error::{Error, ErrorCode, Result};
use crate::image_prep::{ImageFormat, ImageInfo, PrepareOptions, base64_len};

/// JPEG qualities tried, best first, with the size of a typical photo at that quality relative
/// to the first (libjpeg-style encoders, as in browsers and the `image` crate).
const QUALITIES: [(f32, f64); 4] = [(0.92, 1.0), (0.85, 0.70), (0.80, 0.58), (0.75, 0.50)];
/// Aim this far below the budget so a prediction that is a little off still fits.
const MARGIN: f64 = 0.92;
const MAX_ENCODES: u32 = 5;
/// A fit this close to the budget is not worth another encode.
const CLOSE_ENOUGH: f64 = 0.8;

/// One encode to try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    pub width: u32,
    pub height: u32,
    pub quality: f32,
}

/// What to do after an encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Encode again with these settings.
    Retry(Attempt),
    /// Stop: send the largest encode that fitted.
    Done,
}

/// The planner's word on one encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The encode fits the budget: keep it if it is larger than any kept so far.
    pub fits: bool,
    pub next: Next,
}

#[derive(Debug, Clone)]
pub struct Planner {
    /// The oriented original size.
    width: u32,
    height: u32,
    /// The largest size worth sending.
    full: (u32, u32),
    budget_chars: Option<usize>,
    min_side: u32,
    encodes: u32,
    /// The largest encode that fitted so far.
    best_fit: Option<usize>,
    /// Bytes per pixel measured at each quality tried.
    measured: Vec<(f32, f64)>,
}

impl Planner {
    /// `width`×`height` is the original after EXIF orientation.
    pub fn new(width: u32, height: u32, options: &PrepareOptions) -> Planner {
        let (short, long) = (width.min(height).max(1), width.max(height).max(1));
        let scale = (f64::from(options.max_short_side) / f64::from(short))
            .min(f64::from(options.max_long_side) / f64::from(long))
            .min(1.0);
        Planner {
            width,
            height,
            full: scaled(width, height, scale),
            budget_chars: options.max_base64_chars,
            min_side: options.min_side.max(1),
            encodes: 0,
            best_fit: None,
            measured: Vec::new(),
        }
    }

    /// The size a re-encoded image starts from.
    pub fn full_size(&self) -> (u32, u32) {
        self.full
    }

    /// `stored` halved as often as it stays at least `floor` on both sides (rounding up, as JPEG
    /// decoders do): the sizes a JPEG decoder reaches with its fast power-of-two DCT scaling
    /// (down to 1/8). Chromium 156 answers a `desiredWidth` between two of them with the smaller
    /// one (1024×768 of a 4000×3000 photo came back 1000×750), so the browser asks for one exactly.
    pub fn power_of_two_decode_size(stored: (u32, u32), floor: (u32, u32)) -> (u32, u32) {
        let mut size = stored;
        for _ in 0..3 {
            let half = (size.0.div_ceil(2), size.1.div_ceil(2));
            if half.0 < floor.0 || half.1 < floor.1 {
                break;
            }
            size = half;
        }
        size
    }

    fn budget_bytes(&self) -> Option<usize> {
        self.budget_chars.map(|chars| chars / 4 * 3)
    }

    /// Whether the file can be sent as it is: a JPEG without EXIF (no orientation to apply, no
    /// camera or location data to leak), no larger than worth sending, within the budget.
    pub fn can_send_original(&self, info: &ImageInfo, byte_len: usize) -> bool {
        info.format == ImageFormat::Jpeg
            && !info.has_exif
            && self.full == (self.width, self.height)
            && self
                .budget_chars
                .is_none_or(|chars| base64_len(byte_len) <= chars)
    }

    /// Without a budget, the best quality; with one, the quality most photos fit at (one
    /// encode fewer in the common case; an undershoot is followed by a better try).
    pub fn first(&self) -> Attempt {
        let quality = if self.budget_chars.is_some() {
            QUALITIES[1].0
        } else {
            QUALITIES[0].0
        };
        Attempt {
            width: self.full.0,
            height: self.full.1,
            quality,
        }
    }

    /// Judges the encode of `attempt`, `encoded_len` bytes long, and says what comes next.
    pub fn next(&mut self, attempt: Attempt, encoded_len: usize) -> Result<Verdict> {
        self.encodes += 1;
        let Some(budget) = self.budget_bytes() else {
            return Ok(Verdict {
                fits: true,
                next: Next::Done,
            });
        };
        let fits = encoded_len <= budget;
        if fits && self.best_fit.is_none_or(|best| encoded_len > best) {
            self.best_fit = Some(encoded_len);
        }
        let done = Verdict {
            fits,
            next: Next::Done,
        };
        let out_of_budget = || {
            Error::new(
                ErrorCode::ImageBudget,
                format!(
                    "no JPEG of this image fits in {} base64 characters",
                    budget / 3 * 4
                ),
            )
        };
        // Good enough: the best settings fit, or a fit uses most of the budget.
        let best_possible =
            (attempt.width, attempt.height) == self.full && attempt.quality == QUALITIES[0].0;
        if fits && (best_possible || encoded_len as f64 >= budget as f64 * CLOSE_ENOUGH) {
            return Ok(done);
        }
        // A miss after a fit: the fit is as good as it gets without more guessing.
        if !fits && self.best_fit.is_some() {
            return Ok(done);
        }
        if self.encodes >= MAX_ENCODES {
            return if self.best_fit.is_some() {
                Ok(done)
            } else {
                Err(out_of_budget())
            };
        }
        let cost = encoded_len as f64 / (f64::from(attempt.width) * f64::from(attempt.height));
        self.measured.retain(|(q, _)| *q != attempt.quality);
        self.measured.push((attempt.quality, cost));
        let prediction = self.predict(attempt, encoded_len, budget);
        // Only move towards the budget: smaller after a miss, larger after a fit.
        let bigger =
            |a: &Attempt| f64::from(a.width) * f64::from(a.height) * relative_size(a.quality);
        let moves_right = |a: &Attempt| {
            if fits {
                bigger(a) > bigger(&attempt)
            } else {
                bigger(a) < bigger(&attempt)
            }
        };
        match prediction {
            Some(next)
                if moves_right(&next)
                    && next.width >= self.min_side
                    && next.height >= self.min_side =>
            {
                Ok(Verdict {
                    fits,
                    next: Next::Retry(next),
                })
            }
            _ if self.best_fit.is_some() => Ok(done),
            _ => Err(out_of_budget()),
        }
    }

    /// The best settings predicted to fit, from what the encodes so far cost.
    fn predict(&self, attempt: Attempt, encoded_len: usize, budget: usize) -> Option<Attempt> {
        let target = budget as f64 * MARGIN;
        let full_pixels = f64::from(self.full.0) * f64::from(self.full.1);
        let at_full_size = QUALITIES
            .iter()
            .find(|&&(q, _)| full_pixels * self.cost_per_pixel(q) <= target)
            .map(|&(quality, _)| Attempt {
                width: self.full.0,
                height: self.full.1,
                quality,
            });
        at_full_size.or_else(|| {
            let quality = QUALITIES[QUALITIES.len() - 1].0;
            let pixels = f64::from(attempt.width) * f64::from(attempt.height);
            let mut fit_pixels = (target / self.cost_per_pixel(quality)).min(full_pixels);
            if encoded_len > budget && quality >= attempt.quality {
                // A miss at the lowest quality: at least 5 % fewer pixels than last time.
                fit_pixels = fit_pixels.min(pixels * 0.95);
            }
            let (width, height) =
                scaled(self.full.0, self.full.1, (fit_pixels / full_pixels).sqrt());
            Some(Attempt {
                width,
                height,
                quality,
            })
        })
    }

    /// Predicted bytes per pixel at `quality`: measured, interpolated between two measured
    /// qualities (geometrically), or extrapolated from the nearest one with the table.
    fn cost_per_pixel(&self, quality: f32) -> f64 {
        let below = self
            .measured
            .iter()
            .filter(|(q, _)| *q <= quality)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let above = self
            .measured
            .iter()
            .filter(|(q, _)| *q >= quality)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match (below, above) {
            (Some(&(ql, cl)), Some(&(qh, ch))) if qh > ql => {
                let t = f64::from((quality - ql) / (qh - ql));
                cl * (ch / cl).powf(t)
            }
            (Some(&(q, c)), _) | (None, Some(&(q, c))) => {
                c * relative_size(quality) / relative_size(q)
            }
            (None, None) => f64::INFINITY,
        }
    }
}

fn relative_size(quality: f32) -> f64 {
    QUALITIES
        .iter()
        .find(|(q, _)| *q == quality)
        .map_or(1.0, |(_, r)| *r)
}

fn scaled(w: u32, h: u32, scale: f64) -> (u32, u32) {
    let s = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    (s(w), s(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_of_two_decode_sizes_never_go_below_the_floor() {
        let size = Planner::power_of_two_decode_size;
        assert_eq!(size((4000, 3000), (1024, 768)), (2000, 1500));
        assert_eq!(size((4000, 3000), (1000, 750)), (1000, 750));
        assert_eq!(size((4001, 3001), (1000, 750)), (1001, 751));
        assert_eq!(size((1100, 800), (1024, 745)), (1100, 800));
        assert_eq!(size((16000, 12000), (10, 10)), (2000, 1500));
    }

    fn opts(chars: usize) -> PrepareOptions {
        PrepareOptions {
            max_base64_chars: Some(chars),
            ..PrepareOptions::default()
        }
    }

    #[test]
    fn caps_the_short_side_at_768_keeping_the_aspect() {
        assert_eq!(
            Planner::new(4000, 3000, &opts(180_000)).full_size(),
            (1024, 768)
        );
        assert_eq!(
            Planner::new(3000, 4000, &opts(180_000)).full_size(),
            (768, 1024)
        );
        assert_eq!(
            Planner::new(640, 480, &opts(180_000)).full_size(),
            (640, 480)
        );
        assert_eq!(
            Planner::new(20000, 1000, &opts(180_000)).full_size(),
            (2048, 102)
        );
    }

    /// A simulated encoder: bytes proportional to pixels and to the quality table, times `k`.
    fn simulate(planner: &mut Planner, k: f64) -> (Attempt, u32) {
        let mut attempt = planner.first();
        let mut encodes = 0;
        let mut best = None;
        loop {
            let rel = QUALITIES
                .iter()
                .find(|(q, _)| *q == attempt.quality)
                .unwrap()
                .1;
            // The real encoder differs from the table by up to 15 %.
            let len = (f64::from(attempt.width * attempt.height) * k * rel * 1.15) as usize;
            encodes += 1;
            let verdict = planner.next(attempt, len).unwrap();
            if verdict.fits {
                best = Some(attempt);
            }
            match verdict.next {
                Next::Done => return (best.expect("done means something fitted"), encodes),
                Next::Retry(a) => attempt = a,
            }
        }
    }

    #[test]
    fn fits_by_quality_first_then_by_size_in_few_encodes() {
        // 1024x768 at 0.25 bytes/pixel = 226 KB > 135 KB: quality alone can do it.
        let mut p = Planner::new(4000, 3000, &opts(180_000));
        let (a, n) = simulate(&mut p, 0.25);
        assert_eq!((a.width, a.height), (1024, 768));
        assert!(a.quality < 0.92 && n <= 3, "{a:?} after {n}");
        // A noisy image at 1 byte/pixel must also shrink.
        let mut p = Planner::new(4000, 3000, &opts(180_000));
        let (a, n) = simulate(&mut p, 1.0);
        assert!(
            a.width < 1024 && a.quality == 0.75 && n <= 4,
            "{a:?} after {n}"
        );
        assert!(f64::from(a.width) / f64::from(a.height) - 4.0 / 3.0 < 0.01);
    }

    #[test]
    fn an_undershoot_is_followed_by_a_larger_try() {
        let mut p = Planner::new(4000, 3000, &opts(180_000));
        // The first encode misses; the second lands far below the budget.
        let first = p.first();
        let Verdict {
            fits: false,
            next: Next::Retry(second),
        } = p.next(first, 500_000).unwrap()
        else {
            panic!()
        };
        let Verdict {
            fits: true,
            next: Next::Retry(third),
        } = p.next(second, 40_000).unwrap()
        else {
            panic!()
        };
        assert!(
            third.width * third.height > second.width * second.height
                || third.quality > second.quality
        );
        // The third misses: the kept second is used.
        assert_eq!(
            p.next(third, 200_000).unwrap(),
            Verdict {
                fits: false,
                next: Next::Done
            }
        );
    }

    #[test]
    fn without_a_budget_the_first_encode_is_kept() {
        let mut p = Planner::new(
            4000,
            3000,
            &PrepareOptions {
                max_base64_chars: None,
                ..PrepareOptions::default()
            },
        );
        assert_eq!(
            p.next(p.first(), usize::MAX).unwrap(),
            Verdict {
                fits: true,
                next: Next::Done
            }
        );
    }

    #[test]
    fn impossible_budgets_are_typed_errors() {
        let mut p = Planner::new(4000, 3000, &opts(100));
        let mut attempt = p.first();
        let err = loop {
            match p.next(attempt, 5000) {
                Ok(Verdict {
                    next: Next::Retry(a),
                    ..
                }) => attempt = a,
                Ok(v) => panic!("{v:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code, ErrorCode::ImageBudget);
    }

    #[test]
    fn originals_pass_only_when_clean_small_and_within_budget() {
        let info = ImageInfo {
            format: ImageFormat::Jpeg,
            stored_width: 640,
            stored_height: 480,
            has_exif: false,
            jpeg_orientation: 1,
        };
        let p = Planner::new(640, 480, &opts(180_000));
        assert!(p.can_send_original(&info, 100_000));
        assert!(!p.can_send_original(&info, 140_000));
        assert!(!p.can_send_original(
            &ImageInfo {
                has_exif: true,
                ..info
            },
            100_000
        ));
        assert!(!p.can_send_original(
            &ImageInfo {
                format: ImageFormat::Png,
                ..info
            },
            100_000
        ));
        assert!(!Planner::new(4000, 3000, &opts(180_000)).can_send_original(&info, 100_000));
    }
}
