//! What the CLI draws: QR codes in Unicode half blocks, and tables.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// Black on white, whatever the terminal's theme: phones read dark modules on a light ground.
const INK_ON_PAPER: &str = "\x1b[30;47m";
const RESET: &str = "\x1b[0m";

/// The QR symbol for `data` as text lines, two modules per character cell (`█ ▀ ▄` and space,
/// ink = dark module), with the standard 4-module quiet zone. Error correction L keeps the
/// symbol small enough for an 80-column terminal; a screen is a clean medium.
pub fn qr_lines(data: &str) -> Result<Vec<String>, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L)?;
    let text = code.render::<Dense1x2>().quiet_zone(true).build();
    Ok(text.lines().map(str::to_owned).collect())
}

/// The lines wrapped in black-on-white colour codes, for terminals.
pub fn on_paper(lines: &[String]) -> Vec<String> {
    lines.iter().map(|line| format!("{INK_ON_PAPER}{line}{RESET}")).collect()
}

/// A plain left-aligned table with a header row.
pub fn table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads half-block lines back into modules: what a camera would see.
    fn modules(lines: &[String]) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in lines {
            let (top, bottom): (Vec<bool>, Vec<bool>) = line
                .chars()
                .map(|c| match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    _ => (false, false),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn the_drawn_code_has_a_quiet_zone_and_the_modules_of_the_payload() {
        let data = "2@abc,def,ghi,jkl,9";
        let lines = qr_lines(data).unwrap();
        let drawn = modules(&lines);
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).unwrap();
        let width = code.width();
        assert_eq!(lines[0].chars().count(), width + 8, "4 light modules each side");
        for (y, row) in drawn.iter().enumerate() {
            for (x, dark) in row.iter().enumerate() {
                let inside = (4..width + 4).contains(&x) && (4..width + 4).contains(&y);
                let expected = inside && code[(x - 4, y - 4)] == qrcode::Color::Dark;
                assert_eq!(*dark, expected, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn a_whatsapp_sized_code_fits_an_80_column_terminal() {
        let data = format!(
            "2@{},{},{},{},9",
            "A".repeat(32),
            "B".repeat(44),
            "C".repeat(44),
            "D".repeat(44)
        );
        let lines = qr_lines(&data).unwrap();
        assert!(lines[0].chars().count() <= 80, "{} columns", lines[0].chars().count());
        assert!(lines.len() <= 40, "{} rows", lines.len());
    }

    #[test]
    fn tables_align_columns() {
        let out =
            table(["A", "LONG HEADER"], &[["x".into(), "1".into()], ["longer".into(), "2".into()]]);
        assert_eq!(out, "A       LONG HEADER\nx       1\nlonger  2\n");
    }
}
