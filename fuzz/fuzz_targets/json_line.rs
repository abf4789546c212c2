//! A JSON event line, as `lotline post` and `RecordJson` take it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = lotline_service::intake::from_json(line, "fuzz");
    }
});
