//! Figures formatted for finding messages, which a human reads.

/// Milliseconds, with precision that suits the size (`0.42 ms`, `12.5 ms`, `1234 ms`).
pub fn ms(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// Bytes in binary units (`512 B`, `64.0 KiB`, `1.5 MiB`), sign kept.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if value.abs() < 1024.0 {
        return format!("{value:.0} B");
    }
    let mut scaled = value / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if scaled.abs() < 1024.0 {
            break;
        }
        scaled /= 1024.0;
        unit = next;
    }
    format!("{scaled:.1} {unit}")
}

/// A ratio as a percentage (`0.783` → `78.3%`).
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ms(0.4242), "0.42 ms");
        assert_eq!(ms(12.54), "12.5 ms");
        assert_eq!(ms(1234.4), "1234 ms");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(65_536.0), "64.0 KiB");
        assert_eq!(bytes(1.5 * 1024.0 * 1024.0), "1.5 MiB");
        assert_eq!(bytes(-2048.0), "-2.0 KiB");
        assert_eq!(percent(0.783), "78.3%");
    }
}
