//! An EPCIS 2.0 JSON-LD document, read as `lotline import` reads it, each mapped event
//! validated as the server would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_epcis::import::{Importer, Options};
use lotline_epcis::stream::{Flow, Part, read_document};

fuzz_target!(|data: &[u8]| {
    let mut importer = Importer::new(Options::default());
    let _ = read_document(data, &mut |part| {
        match part {
            Part::Context(c) => importer.context(&c, lotline_epcis::Context::default()),
            Part::Event(i, e) => {
                for mapped in importer.event(i, &e) {
                    if let Ok(event) = mapped.result {
                        let _ = lotline_domain::validate(&event);
                    }
                }
            }
            _ => {}
        }
        Ok(Flow::Continue)
    });
    let _ = importer.finish();
});
