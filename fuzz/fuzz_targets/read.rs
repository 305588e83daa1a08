//! Arbitrary bytes into the reader: it must return values or a `ReadError`
//! with a 1-based location inside the text, never panic or hang. Whatever
//! reads and is data must also round-trip through the canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match sx::reader::read_all(&text, "<fuzz>", false) {
        Ok(forms) => {
            for form in &forms {
                let _ = sx::printer::display(form);
                // Everything the reader produces is data, so it has a
                // canonical form, and that form reads back to itself.
                let Ok(canonical) = sx::printer::serialize(form) else {
                    continue;
                };
                let back = sx::reader::read_one(&canonical, "<fuzz>").unwrap_or_else(|e| {
                    panic!("canonical text {canonical:?} of {form} does not read back: {e}")
                });
                let again = sx::printer::serialize(&back).unwrap_or_else(|e| {
                    panic!("re-reading {canonical:?} gave an unserializable value: {e}")
                });
                assert_eq!(again, canonical, "canonical form is not a fixed point");
                assert!(
                    back == *form,
                    "{canonical:?} reads back as a different value"
                );
            }
        }
        Err(e) => {
            let loc = &e.location;
            assert!(
                loc.line >= 1 && loc.col >= 1,
                "bad location {loc:?} for {text:?}"
            );
            let lines = text.split('\n').count();
            assert!(
                loc.line as usize <= lines,
                "line {} beyond the text ({lines} lines)",
                loc.line
            );
            let _ = e.to_string();
        }
    }
    let _ = sx::reader::read_one(&text, "<fuzz>");
});
