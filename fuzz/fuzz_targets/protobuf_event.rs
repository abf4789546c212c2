//! A protobuf `lotline.v1.Event`, as gRPC and NATS carry it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lotline_service::intake::from_protobuf(data, "fuzz", "");
});
