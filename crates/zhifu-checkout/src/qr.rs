//! QR codes as SVG, rendered on the server so the pages need no QR library
//! and no third-party image service ever sees a payment URL.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Longest content accepted; Alipay's `qr_code` values are short URLs.
pub const MAX_CONTENT: usize = 1024;

/// Renders `content` as a standalone SVG document (black on white, with
/// the quiet zone scanners need), at least `min_px` wide.
///
/// Error correction is level M: it survives a phone camera's glare and a
/// slightly scratched screen while keeping the modules large.
///
/// Returns `None` for empty or overlong content (nothing useful to scan).
pub fn svg(content: &str, min_px: u32) -> Option<String> {
    if content.is_empty() || content.len() > MAX_CONTENT {
        return None;
    }
    let code = QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(min_px, min_px)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // The XML declaration is noise inside HTML; keep the bare element.
    Some(match image.find("<svg") {
        Some(i) => image[i..].to_owned(),
        None => image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redraws the SVG's path on a grid of `unit`-pixel modules.
    fn modules_from_svg(svg: &str, unit: u32, n: usize, quiet: usize) -> Vec<bool> {
        let d_start = svg.find(" d=\"").unwrap() + 4;
        let d = &svg[d_start..d_start + svg[d_start..].find('"').unwrap()];
        let mut grid = vec![false; n * n];
        // Each rect is written as `M{x} {y}h{w}v{h}H{x}V{y}`.
        for part in d.split('M').filter(|p| !p.is_empty()) {
            let nums: Vec<u32> = part
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            let (x, y, w, h) = (nums[0], nums[1], nums[2], nums[3]);
            for yy in (y..y + h).step_by(unit as usize) {
                for xx in (x..x + w).step_by(unit as usize) {
                    let (mx, my) = ((xx / unit) as usize - quiet, (yy / unit) as usize - quiet);
                    grid[my * n + mx] = true;
                }
            }
        }
        grid
    }

    #[test]
    fn svg_draws_exactly_the_code_modules() {
        let url = "http://127.0.0.1:8080/sandbox/scan/qr_0123456789abcdef";
        let s = svg(url, 240).unwrap();
        assert!(s.starts_with("<svg"));
        assert!(s.ends_with("</svg>"));
        let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).unwrap();
        let n = code.width();
        let width: u32 = s
            .split("width=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(width >= 240);
        // Quiet zone of 4 modules on each side.
        let unit = width / (n as u32 + 8);
        assert_eq!(unit * (n as u32 + 8), width);
        let want: Vec<bool> = code
            .to_colors()
            .iter()
            .map(|c| *c == qrcode::Color::Dark)
            .collect();
        assert_eq!(modules_from_svg(&s, unit, n, 4), want);
    }

    #[test]
    fn different_content_different_code() {
        assert_ne!(svg("a", 100), svg("b", 100));
    }

    #[test]
    fn refuses_empty_and_huge_content() {
        assert!(svg("", 100).is_none());
        assert!(svg(&"x".repeat(MAX_CONTENT + 1), 100).is_none());
        assert!(svg(&"x".repeat(MAX_CONTENT), 100).is_some());
    }
}
