//! A plot's GeoJSON geometry, checked and rounded for the public view.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lotline_domain::geo::check_geometry(text);
        let _ = lotline_domain::geo::round_geometry(text, 2);
    }
});
