//! Reads a QR code from an image, as a phone's camera would from the screen.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The text of the QR code in a `data:image/png;base64,…` URL (what `canvas.toDataURL()`
/// gives), or why there is none.
pub fn decode_data_url(url: &str) -> Result<String, String> {
    let png = url.strip_prefix("data:image/png;base64,").ok_or("not a PNG data URL")?;
    let png = STANDARD.decode(png).map_err(|e| format!("bad base64: {e}"))?;
    let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .map_err(|e| format!("bad PNG: {e}"))?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    let [grid] = grids.as_slice() else {
        return Err(format!("{} QR codes in the image, expected one", grids.len()));
    };
    grid.decode().map(|(_, text)| text).map_err(|e| format!("undecodable QR code: {e}"))
}
