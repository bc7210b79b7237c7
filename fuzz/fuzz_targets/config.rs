//! The configuration loader on arbitrary text: every problem must come back
//! as an error with a location, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `file:` references read the named file; the fuzzer must not read
    // /dev/zero or the like. Configuration files are trusted to name files.
    if text.contains("file:") {
        return;
    }
    let env = [("ADUAN__LIMITS__MAX_IN_FLIGHT".to_string(), "64".to_string())];
    if let Err(errors) = aduan::instances::check(text, &env, "fuzz.toml") {
        assert!(!errors.0.is_empty());
    }
});
