//! Aspect ratios: parsing OpenAI `size` / `aspect_ratio` values and picking the
//! nearest ratio a target model accepts.

/// Ratios Imagen `:predict` accepts.
pub(crate) const IMAGEN: &[(&str, f64)] = &[
    ("1:1", 1.0),
    ("3:4", 3.0 / 4.0),
    ("4:3", 4.0 / 3.0),
    ("9:16", 9.0 / 16.0),
    ("16:9", 16.0 / 9.0),
];

/// Ratios Gemini image models accept in `generationConfig.imageConfig`.
pub(crate) const GEMINI: &[(&str, f64)] = &[
    ("1:1", 1.0),
    ("2:3", 2.0 / 3.0),
    ("3:2", 3.0 / 2.0),
    ("3:4", 3.0 / 4.0),
    ("4:3", 4.0 / 3.0),
    ("4:5", 4.0 / 5.0),
    ("5:4", 5.0 / 4.0),
    ("9:16", 9.0 / 16.0),
    ("16:9", 16.0 / 9.0),
    ("21:9", 21.0 / 9.0),
];

/// Width over height of `"1792x1024"`, `"16:9"` or `"16/9"`; `None` for
/// `"auto"` and anything else.
pub(crate) fn ratio(value: &str) -> Option<f64> {
    let value = value.trim();
    let (w, h) = value
        .split_once(['x', 'X', ':', '/'])
        .or_else(|| value.split_once('×'))?;
    let (w, h) = (decimal(w.trim())?, decimal(h.trim())?);
    (w > 0.0 && h > 0.0).then_some(w / h)
}

/// A plain decimal (`16`, `1.5`, `+2`, `.5`): a size or a ratio's side.
/// (Not `str::parse::<f64>`: its exact algorithm brings 20 KB of tables
/// into the module for a number that is only ever compared roughly.)
fn decimal(text: &str) -> Option<f64> {
    let text = text.strip_prefix('+').unwrap_or(text);
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = whole.len() + fraction.len();
    let all_digits = whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit());
    if digits == 0 || digits > 18 || !all_digits {
        return None;
    }
    let mantissa = whole
        .bytes()
        .chain(fraction.bytes())
        .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
    // At most 18 digits: the mantissa fits, and so does the power of ten.
    Some(mantissa as f64 / 10f64.powi(fraction.len() as i32))
}

/// The entry of `set` nearest to `ratio` (by the factor between them).
#[inline(never)]
pub(crate) fn nearest(ratio: f64, set: &[(&'static str, f64)]) -> &'static str {
    let distance = |candidate: f64| (ratio / candidate).max(candidate / ratio);
    let mut best = ("1:1", f64::INFINITY);
    for &(name, value) in set {
        let d = distance(value);
        if d < best.1 {
            best = (name, d);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_snaps() {
        struct Case {
            name: &'static str,
            value: &'static str,
            imagen: Option<&'static str>,
            gemini: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "square size",
                value: "1024x1024",
                imagen: Some("1:1"),
                gemini: Some("1:1"),
            },
            Case {
                name: "dall-e landscape",
                value: "1792x1024",
                imagen: Some("16:9"),
                gemini: Some("16:9"),
            },
            Case {
                name: "dall-e portrait",
                value: "1024x1792",
                imagen: Some("9:16"),
                gemini: Some("9:16"),
            },
            Case {
                name: "gpt-image landscape",
                value: "1536x1024",
                imagen: Some("4:3"),
                gemini: Some("3:2"),
            },
            Case {
                name: "ratio",
                value: "16:9",
                imagen: Some("16:9"),
                gemini: Some("16:9"),
            },
            Case {
                name: "ultrawide",
                value: "21:9",
                imagen: Some("16:9"),
                gemini: Some("21:9"),
            },
            Case {
                name: "spaces and slash",
                value: " 4 / 5 ",
                imagen: Some("3:4"),
                gemini: Some("4:5"),
            },
            Case {
                name: "auto",
                value: "auto",
                imagen: None,
                gemini: None,
            },
            Case {
                name: "zero",
                value: "0x10",
                imagen: None,
                gemini: None,
            },
            Case {
                name: "garbage",
                value: "big",
                imagen: None,
                gemini: None,
            },
        ];
        for case in cases {
            let r = ratio(case.value);
            assert_eq!(r.map(|r| nearest(r, IMAGEN)), case.imagen, "{}", case.name);
            assert_eq!(r.map(|r| nearest(r, GEMINI)), case.gemini, "{}", case.name);
        }
    }

    #[test]
    fn decimals_are_what_the_standard_parser_reads() {
        for text in [
            "16",
            "1.5",
            "+2",
            ".5",
            "5.",
            "0.75",
            "007",
            "123456789012345678",
            "1.777777",
        ] {
            assert_eq!(decimal(text), text.parse::<f64>().ok(), "{text}");
        }
        // Refused: not plain decimals, or longer than 18 digits.
        for text in [
            "",
            ".",
            "-1",
            "1e3",
            "inf",
            "NaN",
            "1.2.3",
            "1 2",
            "1234567890123456789",
        ] {
            assert_eq!(decimal(text), None, "{text}");
        }
        assert_eq!(ratio("1.5:1"), Some(1.5));
    }
}
