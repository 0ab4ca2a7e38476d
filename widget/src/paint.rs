//! The QR symbol as modules, and how to lay it on a canvas so that it stays sharp.

use qrcodegen::{QrCode, QrCodeEcc};

/// Light modules around the symbol, as the QR standard asks.
pub const QUIET_ZONE: usize = 4;

/// A symbol with its quiet zone: `size` × `size` modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modules {
    pub size: usize,
    dark: Vec<bool>,
}

impl Modules {
    /// Encodes `data` as bytes, with error correction M at least (robust to a camera at an
    /// angle on a screen; raised when the same size allows).
    ///
    /// `qrcodegen` (Project Nayuki's reference encoder) rather than the `qrcode` crate the CLI
    /// uses: it computes its Reed–Solomon tables instead of carrying them, which keeps 12 KB
    /// (gzipped) out of the bundle (measured with `cargo bench -p keebai-e2e --bench widget`).
    pub fn encode(data: &str) -> Result<Self, qrcodegen::DataTooLong> {
        let code = QrCode::encode_binary(data.as_bytes(), QrCodeEcc::Medium)?;
        let width = code.size() as usize;
        let size = width + 2 * QUIET_ZONE;
        let mut dark = vec![false; size * size];
        for y in 0..width {
            for x in 0..width {
                dark[(y + QUIET_ZONE) * size + x + QUIET_ZONE] =
                    code.get_module(x as i32, y as i32);
            }
        }
        Ok(Self { size, dark })
    }

    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.size + x]
    }

    /// The dark modules as horizontal runs `(x, y, length)`, row by row: one rectangle per
    /// run paints the symbol with about half the canvas calls of one per module.
    pub fn dark_runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.dark.chunks(self.size).enumerate().flat_map(|(y, row)| {
            let mut x = 0;
            std::iter::from_fn(move || {
                let start = x + row[x..].iter().position(|&dark| dark)?;
                let length = row[start..].iter().take_while(|&&dark| dark).count();
                x = start + length;
                Some((start, y, length))
            })
        })
    }
}

/// Canvas sizes for a symbol of `modules` at about `css_size` CSS pixels on a screen with
/// `device_pixel_ratio`: every module is a whole number of device pixels, so no edge is blurred
/// by resampling, at any ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// Device pixels per module.
    pub module_px: u32,
    /// The canvas's backing store, in device pixels (width = height).
    pub canvas_px: u32,
    /// The canvas's CSS size (width = height).
    pub css_px: f64,
}

pub fn layout(css_size: f64, device_pixel_ratio: f64, modules: usize) -> Layout {
    let ratio = if device_pixel_ratio.is_finite() && device_pixel_ratio > 0.0 {
        device_pixel_ratio
    } else {
        1.0
    };
    let module_px = ((css_size * ratio) / modules as f64).floor().max(1.0) as u32;
    let canvas_px = module_px * modules as u32;
    Layout { module_px, canvas_px, css_px: canvas_px as f64 / ratio }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_cover_exactly_the_dark_modules() {
        let modules = Modules::encode("2@abc,def,ghi,jkl,9").unwrap();
        let mut painted = vec![false; modules.size * modules.size];
        let mut runs = 0;
        for (x, y, length) in modules.dark_runs() {
            assert!(length > 0);
            // Runs are maximal: light (or the edge) on both sides.
            assert!(x == 0 || !modules.is_dark(x - 1, y));
            assert!(x + length == modules.size || !modules.is_dark(x + length, y));
            for x in x..x + length {
                assert!(!painted[y * modules.size + x], "painted twice");
                painted[y * modules.size + x] = true;
            }
            runs += 1;
        }
        for y in 0..modules.size {
            for x in 0..modules.size {
                assert_eq!(painted[y * modules.size + x], modules.is_dark(x, y), "({x}, {y})");
            }
        }
        let dark = painted.iter().filter(|&&d| d).count();
        assert!(runs < dark * 2 / 3, "{runs} runs for {dark} dark modules");
    }

    #[test]
    fn the_symbol_is_framed_by_a_light_quiet_zone() {
        let modules = Modules::encode("2@abc,def,ghi,jkl,9").unwrap();
        for i in 0..modules.size {
            for edge in 0..QUIET_ZONE {
                assert!(!modules.is_dark(i, edge) && !modules.is_dark(edge, i));
                assert!(!modules.is_dark(i, modules.size - 1 - edge));
            }
        }
        // The finder pattern's corner is dark.
        assert!(modules.is_dark(QUIET_ZONE, QUIET_ZONE));
    }

    #[test]
    fn modules_are_whole_device_pixels_at_any_ratio() {
        for ratio in [1.0, 1.25, 1.5, 2.0, 3.0, 0.0, f64::NAN] {
            let layout = layout(256.0, ratio, 41);
            assert_eq!(layout.canvas_px, layout.module_px * 41);
            assert!(layout.module_px >= 1);
            let effective = if ratio.is_finite() && ratio > 0.0 { ratio } else { 1.0 };
            assert!(
                layout.css_px <= 256.0 && layout.css_px > 256.0 - 41.0 / effective,
                "{ratio}: {layout:?}"
            );
        }
    }
}
