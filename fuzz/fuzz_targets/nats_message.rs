//! A NATS message: subject, headers (lotline's and NATS's own names, any values) and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;

use lotline_ingest::message::READ_HEADERS as HEADERS;

fuzz_target!(|input: (String, Vec<(u8, String)>, Vec<u8>, bool)| {
    let (subject, headers, payload, enforce) = input;
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in &headers {
        // Header values NATS itself would not carry (line breaks) are not lotline's input.
        if !value.contains(['\r', '\n']) {
            map.insert(HEADERS[usize::from(*name) % HEADERS.len()], value.as_str());
        }
    }
    let _ = lotline_ingest::message::submission(
        "lotline",
        &subject,
        Some(&map),
        &payload,
        chrono::Utc::now(),
        enforce,
    );
});
