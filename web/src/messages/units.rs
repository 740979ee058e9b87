//! Sizes and durations as people read them.

/// `950 B`, `121 KB`, `4.2 MB`.
pub fn bytes(n: usize) -> String {
    match n {
        0..1000 => format!("{n} B"),
        1000..1_000_000 => format!("{} KB", (n as f64 / 1000.0).round()),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// `4 ms`, `870 ms`, `1.3 s`, `12 s`.
pub fn duration(ms: f64) -> String {
    match ms {
        ms if !ms.is_finite() || ms < 0.0 => "—".into(),
        ms if ms < 1000.0 => format!("{} ms", ms.round()),
        ms if ms < 10_000.0 => format!("{:.1} s", ms / 1000.0),
        ms => format!("{} s", (ms / 1000.0).round()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes(950), "950 B");
        assert_eq!(bytes(121_400), "121 KB");
        assert_eq!(bytes(4_200_000), "4.2 MB");
        assert_eq!(duration(3.6), "4 ms");
        assert_eq!(duration(1290.0), "1.3 s");
        assert_eq!(duration(12_400.0), "12 s");
        assert_eq!(duration(f64::NAN), "—");
    }
}
